"""The ``Backend`` interface, batch validation and backend selection.

A backend turns a loaded ``ModelArtifact`` into something that maps a batch to class probabilities:

- ``load(artifact)`` prepares the model (export, engine build or cache hit);
- ``warmup(iterations)`` runs a few predictions on a synthetic batch and checks that the output is a
  probability distribution (the daemon reports ready only after this passes);
- ``predict(batch) -> np.ndarray``: ``batch`` maps each modality name to ``(N, *input_shape)`` float32
  and optionally ``present`` to ``(N, M)`` (1 present, 0 absent, in ``artifact.modalities`` order;
  all present when omitted); returns ``(N, K)`` float32 probabilities;
- ``name``: ``"torch"``, ``"onnxruntime"`` or ``"tensorrt"``.

``select_backend("auto")`` prefers TensorRT (importable and a CUDA GPU present), then ONNX Runtime,
then torch, and logs why each candidate was taken or skipped. Optional dependencies are imported only
when their backend is asked about, never at import of this package.
"""

import abc
import importlib
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Dict, List, Mapping, Optional, Sequence, Tuple, Type, Union

import numpy as np

if TYPE_CHECKING:  # pragma: no cover - typing only
    from cosmo_edge.runtime.artifacts import ModelArtifact

logger = logging.getLogger(__name__)

PRESENT_KEY = "present"
AUTO_ORDER: Tuple[str, ...] = ("tensorrt", "onnxruntime", "torch")
BACKEND_CLASSES: Dict[str, str] = {
    "torch": "cosmo_edge.runtime.torch_backend:TorchBackend",
    "onnxruntime": "cosmo_edge.runtime.onnx_backend:OnnxRuntimeBackend",
    "tensorrt": "cosmo_edge.runtime.tensorrt_backend:TensorRTBackend",
}
PathLike = Union[str, Path]


class BackendError(RuntimeError):
    """A backend failed to load, build or run a model."""


class BackendUnavailable(BackendError):
    """A backend cannot run here (missing package, no GPU); the message says which."""


class BatchError(ValueError):
    """A batch does not match the model's modalities, shapes or value rules."""


def prepare_batch(
    batch: Mapping[str, np.ndarray], modalities: Sequence[str], input_shapes: Mapping[str, Tuple[int, ...]]
) -> List[np.ndarray]:
    """Validate ``batch`` and return C-contiguous float32 arrays: one per modality, then ``present``.

    Raises ``BatchError`` naming the offending key for a missing or unknown key, a wrong shape, a
    non-finite value, or a sample with no modality present (its fusion weights would be undefined).
    """
    unknown = sorted(set(batch) - set(modalities) - {PRESENT_KEY})
    missing = [m for m in modalities if m not in batch]
    if unknown or missing:
        raise BatchError(f"batch keys: missing {missing}, unknown {unknown}; expected {list(modalities)}")
    arrays: List[np.ndarray] = []
    n: Optional[int] = None
    for modality in modalities:
        arr = np.ascontiguousarray(batch[modality], dtype=np.float32)
        expected = tuple(input_shapes[modality])
        if arr.ndim != len(expected) + 1 or tuple(arr.shape[1:]) != expected:
            raise BatchError(f"{modality}: shape {arr.shape}, expected (N, {', '.join(map(str, expected))})")
        if n is None:
            n = arr.shape[0]
        elif arr.shape[0] != n:
            raise BatchError(f"{modality}: batch size {arr.shape[0]} differs from {modalities[0]}'s {n}")
        if not np.all(np.isfinite(arr)):
            raise BatchError(f"{modality}: contains NaN or inf")
        arrays.append(arr)
    assert n is not None
    if n == 0:
        raise BatchError("empty batch")
    if PRESENT_KEY in batch:
        present = np.ascontiguousarray(batch[PRESENT_KEY], dtype=np.float32)
        if present.shape != (n, len(modalities)):
            raise BatchError(f"present: shape {present.shape}, expected ({n}, {len(modalities)})")
        if not np.all((present == 0.0) | (present == 1.0)):
            raise BatchError("present: values must be 0 or 1")
        empty_rows = np.flatnonzero(present.sum(axis=1) == 0)
        if empty_rows.size:
            raise BatchError(f"present: samples {empty_rows.tolist()} have no modality present")
    else:
        present = np.ones((n, len(modalities)), dtype=np.float32)
    arrays.append(present)
    return arrays


class Backend(abc.ABC):
    """Runs a ``ModelArtifact``'s classifier; subclasses implement ``_load`` and ``_predict``."""

    name = ""

    def __init__(self) -> None:
        self.artifact: Optional[ModelArtifact] = None

    @classmethod
    @abc.abstractmethod
    def availability(cls) -> Tuple[bool, str]:
        """Return ``(usable, reason)``; never raises, imports optional packages lazily."""

    @abc.abstractmethod
    def _load(self, artifact: "ModelArtifact") -> None:
        """Prepare ``artifact`` for ``_predict``."""

    @abc.abstractmethod
    def _predict(self, arrays: List[np.ndarray]) -> np.ndarray:
        """Probabilities ``(N, K)`` for validated arrays (modalities in order, then present)."""

    def load(self, artifact: "ModelArtifact") -> None:
        """Load ``artifact`` (replacing any model loaded before)."""
        started = time.perf_counter()
        self._load(artifact)
        self.artifact = artifact
        logger.info(
            "%s backend loaded model %s (%s) in %.2f s",
            self.name,
            artifact.version,
            ", ".join(artifact.modalities),
            time.perf_counter() - started,
        )

    def predict(self, batch: Mapping[str, np.ndarray]) -> np.ndarray:
        """Class probabilities ``(N, K)`` float32 for ``batch`` (see the module docstring)."""
        artifact = self._require_artifact()
        arrays = prepare_batch(batch, artifact.modalities, artifact.input_shapes)
        probs = np.asarray(self._predict(arrays), dtype=np.float32)
        expected = (arrays[0].shape[0], artifact.num_classes)
        if probs.shape != expected:
            raise BackendError(f"{self.name}: output shape {probs.shape}, expected {expected}")
        return probs

    def warmup(self, iterations: int = 3, batch_size: int = 1) -> float:
        """Run ``iterations`` predictions on a synthetic batch, self-test them, return the last latency (s).

        Raises ``BackendError`` when the output is not a probability distribution per sample.
        """
        artifact = self._require_artifact()
        batch = artifact.example_batch(batch_size, seed=0)
        latency_s = 0.0
        for _ in range(max(1, iterations)):
            started = time.perf_counter()
            probs = self.predict(batch)
            latency_s = time.perf_counter() - started
        if not np.all(np.isfinite(probs)) or not np.allclose(probs.sum(axis=1), 1.0, atol=1e-3):
            raise BackendError(f"{self.name}: warm-up output is not a probability distribution: {probs}")
        logger.info("%s backend warm: %.2f ms per batch of %d", self.name, latency_s * 1e3, batch_size)
        return latency_s

    def _require_artifact(self) -> "ModelArtifact":
        if self.artifact is None:
            raise BackendError(f"{self.name}: no model loaded; call load(artifact) first")
        return self.artifact


def backend_class(name: str) -> Type[Backend]:
    """Import and return the backend class registered as ``name``."""
    try:
        target = BACKEND_CLASSES[name]
    except KeyError:
        raise BackendError(
            f"unknown backend {name!r}; choose one of {sorted(BACKEND_CLASSES)} or 'auto'"
        ) from None
    module_name, class_name = target.split(":")
    return getattr(importlib.import_module(module_name), class_name)


def create_backend(name: str, threads: int = 1, cache_dir: Optional[PathLike] = None) -> Backend:
    """Create the backend ``name`` (not ``auto``); raises ``BackendUnavailable`` with the reason."""
    cls = backend_class(name)
    usable, reason = cls.availability()
    if not usable:
        raise BackendUnavailable(f"backend {name} unavailable: {reason}")
    logger.info("backend %s: %s", name, reason)
    return cls(threads=threads, cache_dir=cache_dir)  # type: ignore[call-arg]


def select_backend(name: str = "auto", threads: int = 1, cache_dir: Optional[PathLike] = None) -> Backend:
    """Return a backend instance: ``name`` itself, or for ``auto`` the first usable of ``AUTO_ORDER``.

    ``threads`` is the intra-op thread count (ONNX Runtime, torch); ``cache_dir`` holds ONNX exports
    and TensorRT engines (the service's ``StateDirectory=``). Every decision is logged.
    """
    if name != "auto":
        return create_backend(name, threads=threads, cache_dir=cache_dir)
    skipped: List[str] = []
    for candidate in AUTO_ORDER:
        usable, reason = backend_class(candidate).availability()
        if usable:
            logger.info(
                "backend auto: chose %s (%s)%s",
                candidate,
                reason,
                "; skipped " + "; ".join(skipped) if skipped else "",
            )
            return backend_class(candidate)(threads=threads, cache_dir=cache_dir)  # type: ignore[call-arg]
        skipped.append(f"{candidate}: {reason}")
        logger.info("backend auto: skipping %s (%s)", candidate, reason)
    raise BackendUnavailable("no usable backend: " + "; ".join(skipped))

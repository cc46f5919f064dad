"""Model artifacts: a loaded classifier plus what every backend needs to run and cache it.

A ``ModelArtifact`` holds the classifier (eval mode, CPU), the modality order (the columns of
``present``), per-modality input shapes, label names, the normalisation constants the checkpoint
carries, and the sha256 of the checkpoint file. The hash keys ONNX exports and TensorRT engines so a
fine-tuned model never reuses a stale engine; its first 12 hex digits are the model version that
``activity.window`` messages carry.

``ProbabilityModel`` wraps the classifier's ``forward(inputs: dict, present)`` into a module of
positional tensors (modalities in order, then ``present``) that returns softmax probabilities: the form
``torch.onnx.export`` and ``torch2trt`` need.
"""

import hashlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from torch import nn

logger = logging.getLogger(__name__)

PathLike = Union[str, Path]
_HASH_CHUNK_BYTES = 1 << 20


class ArtifactError(ValueError):
    """A checkpoint does not describe a model the runtime can serve."""


class ProbabilityModel(nn.Module):
    """Positional-input wrapper: ``forward(*modality_tensors, present) -> softmax probabilities``."""

    def __init__(self, model: nn.Module, modalities: Sequence[str]) -> None:
        super().__init__()
        self.model = model
        self.modalities = list(modalities)

    def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
        """``tensors``: one ``(N, *shape)`` tensor per modality in order, then ``present`` ``(N, M)``."""
        inputs = {name: tensors[i] for i, name in enumerate(self.modalities)}
        logits = self.model(inputs, tensors[len(self.modalities)])
        return torch.softmax(logits, 1)


@dataclass
class ModelArtifact:
    """A classifier ready to serve; see the module docstring."""

    model: nn.Module
    modalities: List[str]
    input_shapes: Dict[str, Tuple[int, ...]]
    label_names: List[str]
    sha256: str
    path: Optional[Path] = None
    normalization: Optional[Dict[str, Any]] = None
    meta: Dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        missing = [m for m in self.modalities if m not in self.input_shapes]
        if missing:
            raise ArtifactError(f"no input shape for modalities {missing}")
        self.input_shapes = {m: tuple(int(v) for v in self.input_shapes[m]) for m in self.modalities}
        self.model.eval()

    @property
    def version(self) -> str:
        """Short model version: the first 12 hex digits of the artifact's sha256."""
        return self.sha256[:12]

    @property
    def num_classes(self) -> int:
        """Number of output classes (length of ``label_names``)."""
        return len(self.label_names)

    def probability_module(self) -> ProbabilityModel:
        """The classifier as a positional-input module returning probabilities."""
        return ProbabilityModel(self.model, self.modalities).eval()

    def input_names(self) -> List[str]:
        """Graph input names in order: the modalities, then ``present``."""
        return self.modalities + ["present"]

    def example_batch(self, batch_size: int = 1, seed: int = 0) -> Dict[str, np.ndarray]:
        """A random batch of the right shapes (standard normal values, every modality present)."""
        rng = np.random.default_rng(seed)
        batch = {
            m: rng.standard_normal((batch_size,) + self.input_shapes[m]).astype(np.float32)
            for m in self.modalities
        }
        batch["present"] = np.ones((batch_size, len(self.modalities)), dtype=np.float32)
        return batch

    def example_tensors(self, batch_size: int = 1, seed: int = 0) -> List[torch.Tensor]:
        """``example_batch`` as tensors in graph-input order (for export and engine builds)."""
        batch = self.example_batch(batch_size, seed)
        return [torch.from_numpy(batch[name]) for name in self.input_names()]


def sha256_file(path: PathLike) -> str:
    """Hex sha256 of a file's bytes, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_HASH_CHUNK_BYTES), b""):
            digest.update(chunk)
    return digest.hexdigest()


def sha256_module(model: nn.Module, extra: Optional[Mapping[str, Any]] = None) -> str:
    """Hex sha256 of a module's state (names, dtypes, shapes, bytes) plus JSON-able ``extra``."""
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        value = tensor.detach().cpu().contiguous()
        digest.update(f"{name}|{value.dtype}|{tuple(value.shape)}|".encode())
        if value.dtype == torch.bfloat16:  # numpy has no bfloat16
            value = value.float()
        digest.update(value.numpy().tobytes())
    digest.update(json.dumps(extra or {}, sort_keys=True, default=str).encode())
    return digest.hexdigest()


def artifact_from_module(
    model: nn.Module,
    input_shapes: Mapping[str, Sequence[int]],
    label_names: Sequence[str],
    modalities: Optional[Sequence[str]] = None,
    normalization: Optional[Dict[str, Any]] = None,
) -> ModelArtifact:
    """Wrap an in-memory classifier (tests, freshly fine-tuned models); hashed from its state."""
    order = list(modalities) if modalities is not None else list(input_shapes)
    shapes = {m: tuple(int(v) for v in input_shapes[m]) for m in order}
    sha = sha256_module(model, {"modalities": order, "input_shapes": shapes, "labels": list(label_names)})
    return ModelArtifact(
        model=model,
        modalities=order,
        input_shapes=shapes,
        label_names=list(label_names),
        sha256=sha,
        normalization=normalization,
    )


def _modality_shapes(
    meta: Mapping[str, Any], model: nn.Module
) -> Tuple[List[str], Dict[str, Tuple[int, ...]]]:
    """Modality order and input shapes from checkpoint metadata, in the classifier's encoder order."""
    raw = meta.get("modalities")
    shapes: Dict[str, Tuple[int, ...]] = {}
    if isinstance(raw, Mapping):
        shapes = {str(k): tuple(int(v) for v in value) for k, value in raw.items()}
    elif isinstance(raw, Sequence):
        for entry in raw:
            if isinstance(entry, Mapping) and "name" in entry and "input_shape" in entry:
                shapes[str(entry["name"])] = tuple(int(v) for v in entry["input_shape"])
    extra = meta.get("input_shapes")
    if isinstance(extra, Mapping):
        shapes.update({str(k): tuple(int(v) for v in value) for k, value in extra.items()})
    encoders = getattr(model, "encoders", None)
    order = list(encoders.keys()) if isinstance(encoders, nn.ModuleDict) else list(shapes)
    missing = [m for m in order if m not in shapes]
    if not order or missing:
        raise ArtifactError(f"checkpoint metadata gives no input shape for modalities {missing or '(none)'}")
    return order, shapes


def load_artifact(path: PathLike) -> ModelArtifact:
    """Load a training checkpoint (``cosmo_edge.training.checkpoint``) as a ``ModelArtifact``."""
    import models.radar  # noqa: F401  (registers the "radar" encoder for checkpoints that use it)
    from cosmo_edge.training.checkpoint import load_classifier

    path = Path(path)
    model, meta = load_classifier(path)
    modalities, shapes = _modality_shapes(meta, model)
    labels = meta.get("label_names")
    if not labels:
        raise ArtifactError(f"{path}: checkpoint has no label_names")
    artifact = ModelArtifact(
        model=model.cpu(),
        modalities=modalities,
        input_shapes=shapes,
        label_names=[str(v) for v in labels],
        sha256=sha256_file(path),
        path=path,
        normalization=meta.get("normalization"),
        meta={k: v for k, v in meta.items() if k != "state_dict"},
    )
    logger.info("loaded model %s from %s: %s, %d classes", artifact.version, path, modalities, len(labels))
    return artifact

"""TensorRT backend: torch2trt engines in FP16, built on the device and cached on disk.

TensorRT engines are not portable across TensorRT versions or GPUs, so an engine is built where it
runs (first use, and again after every fine-tune) and cached in ``cache_dir`` (the service's
``StateDirectory=``) under a key that hashes everything that invalidates it: the sha256 of the model
artifact, the TensorRT version, the GPU name and compute capability, the precision, the input shapes
(with the engine's batch size) and the torch2trt version (``EngineKey``).

Cache layout: ``engine-<model version>-<key>.engine`` holds the serialized engine bytes and a ``.json``
beside it holds the key fields and the binding names; each is written to a temp file and renamed, the
JSON last, so a crash mid-write never leaves a half engine that looks complete. No pickle is involved:
loading rebuilds ``TRTModule`` from the bytes with ``load_state_dict``. An engine that fails to load is
deleted and rebuilt. ``is_cached`` lets the daemon serve with ONNX Runtime while a build runs.

The real API used: ``torch2trt.torch2trt(module, inputs, fp16_mode=True, max_batch_size=B, ...)`` and
``torch2trt.TRTModule`` (``state_dict()["engine"]`` / ``load_state_dict``). Converters for calls that
torch2trt lacks are registered first (``trt_converters``). The engine has a fixed batch size
(``max_batch_size``, default 1: the daemon classifies one window at a time); larger batches are split
and smaller ones padded. Not checked without the device: on the Jetson, tests/test_runtime_parity.py
builds a real engine and compares it with torch eager.
"""

import copy
import hashlib
import json
import logging
import os
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple, Union

import numpy as np

from cosmo_edge.runtime.artifacts import ModelArtifact
from cosmo_edge.runtime.base import Backend, BackendUnavailable

logger = logging.getLogger(__name__)

OUTPUT_NAME = "probabilities"
PRECISION_FP16 = "fp16"
PRECISION_FP32 = "fp32"


@dataclass(frozen=True)
class EngineKey:
    """Everything an engine depends on; ``digest()`` names its cache file."""

    model_sha256: str
    tensorrt_version: str
    gpu_name: str
    compute_capability: str
    precision: str
    input_shapes: Tuple[Tuple[str, Tuple[int, ...]], ...]
    torch2trt_version: str

    def digest(self) -> str:
        """Hex sha256 of the key's canonical JSON."""
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()


def _torch2trt_version(module: Any) -> str:
    """torch2trt's installed version (package metadata, else ``__version__``, else ``unknown``)."""
    try:
        from importlib.metadata import PackageNotFoundError, version
    except ImportError:  # Python < 3.8
        return str(getattr(module, "__version__", "unknown"))
    try:
        return version("torch2trt")
    except PackageNotFoundError:
        return str(getattr(module, "__version__", "unknown"))


def availability() -> Tuple[bool, str]:
    """``(usable, reason)``: tensorrt and torch2trt import and torch sees a CUDA GPU."""
    try:
        import tensorrt
        import torch
        import torch2trt
    except ImportError as exc:
        return False, f"tensorrt/torch2trt do not import ({exc})"
    if not torch.cuda.is_available():
        return False, "no CUDA GPU visible to torch"
    major, minor = torch.cuda.get_device_capability(0)
    return True, (
        f"tensorrt {tensorrt.__version__}, torch2trt {_torch2trt_version(torch2trt)}, "
        f"GPU {torch.cuda.get_device_name(0)} (sm_{major}{minor})"
    )


def engine_key(artifact: ModelArtifact, batch_size: int, precision: str) -> EngineKey:
    """The ``EngineKey`` of ``artifact`` on this machine (needs tensorrt, torch2trt and a GPU)."""
    import tensorrt
    import torch
    import torch2trt

    major, minor = torch.cuda.get_device_capability(0)
    shapes = tuple((m, (int(batch_size),) + artifact.input_shapes[m]) for m in artifact.modalities)
    shapes += (("present", (int(batch_size), len(artifact.modalities))),)
    return EngineKey(
        model_sha256=artifact.sha256,
        tensorrt_version=str(tensorrt.__version__),
        gpu_name=str(torch.cuda.get_device_name(0)),
        compute_capability=f"{major}.{minor}",
        precision=precision,
        input_shapes=shapes,
        torch2trt_version=_torch2trt_version(torch2trt),
    )


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


class TensorRTBackend(Backend):
    """torch2trt engine (FP16 by default) on a CUDA GPU; see the module docstring."""

    name = "tensorrt"

    def __init__(
        self,
        threads: int = 1,
        cache_dir: Optional[Union[str, Path]] = None,
        fp16: bool = True,
        max_batch_size: int = 1,
        workspace_bytes: int = 1 << 28,
        device: str = "cuda",
    ) -> None:
        super().__init__()
        del threads  # TensorRT runs on the GPU; CPU threads are not a TensorRT setting
        self._tmp: Optional[tempfile.TemporaryDirectory] = None
        if cache_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="cosmo-edge-trt-")
            cache_dir = self._tmp.name
            logger.warning(
                "tensorrt backend without cache_dir: engines go to %s and are rebuilt next start", cache_dir
            )
        self.cache_dir = Path(cache_dir)
        self.precision = PRECISION_FP16 if fp16 else PRECISION_FP32
        self.max_batch_size = int(max_batch_size)
        self.workspace_bytes = int(workspace_bytes)
        self.device = device
        self._module: Any = None
        self.engine_file: Optional[Path] = None
        self.built = False

    @classmethod
    def availability(cls) -> Tuple[bool, str]:
        """See module-level ``availability``."""
        return availability()

    def engine_paths(self, artifact: ModelArtifact) -> Tuple[Path, Path]:
        """(engine bytes, JSON sidecar) paths for ``artifact`` on this machine."""
        digest = engine_key(artifact, self.max_batch_size, self.precision).digest()
        stem = f"engine-{artifact.version}-{digest[:16]}"
        return self.cache_dir / f"{stem}.engine", self.cache_dir / f"{stem}.json"

    def is_cached(self, artifact: ModelArtifact) -> bool:
        """True when a complete engine for ``artifact`` is in the cache (no build needed)."""
        engine_file, meta_file = self.engine_paths(artifact)
        return engine_file.exists() and meta_file.exists()

    def _load(self, artifact: ModelArtifact) -> None:
        usable, reason = availability()
        if not usable:
            raise BackendUnavailable(f"tensorrt backend unavailable: {reason}")
        from cosmo_edge.runtime.trt_converters import register_converters

        register_converters()
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        engine_file, meta_file = self.engine_paths(artifact)
        module = self._load_cached(engine_file, meta_file)
        self.built = module is None
        if module is None:
            module = self._build(artifact, engine_file, meta_file)
        self._module = module
        self.engine_file = engine_file

    def _load_cached(self, engine_file: Path, meta_file: Path) -> Any:
        """A ``TRTModule`` from the cache, or None (missing, or broken and then deleted)."""
        if not (engine_file.exists() and meta_file.exists()):
            return None
        from torch2trt import TRTModule

        try:
            meta = json.loads(meta_file.read_text())
            state = {
                "engine": bytearray(engine_file.read_bytes()),
                "input_names": list(meta["input_names"]),
                "output_names": list(meta["output_names"]),
            }
            module = TRTModule()
            module.load_state_dict(state)
        except (OSError, ValueError, KeyError, RuntimeError, AttributeError) as exc:
            logger.warning("engine %s failed to load (%s); deleting it and building again", engine_file, exc)
            module = None
        if module is not None and getattr(module, "engine", None) is None:
            logger.warning("engine %s did not deserialize; deleting it and building again", engine_file)
            module = None
        if module is None:
            for stale in (meta_file, engine_file):
                if stale.exists():
                    stale.unlink()
            return None
        logger.info("tensorrt engine cache hit: %s", engine_file)
        return module

    def _build(self, artifact: ModelArtifact, engine_file: Path, meta_file: Path) -> Any:
        """Build with torch2trt on the GPU, write the cache, return the ``TRTModule``."""
        import torch
        import torch2trt

        key = engine_key(artifact, self.max_batch_size, self.precision)
        logger.info(
            "building tensorrt engine for model %s (%s); this can take minutes", artifact.version, key
        )
        started = time.perf_counter()
        model = copy.deepcopy(artifact.probability_module()).to(self.device).eval()
        inputs = [t.to(self.device) for t in artifact.example_tensors(batch_size=self.max_batch_size)]
        with torch.no_grad():
            module = torch2trt.torch2trt(
                model,
                inputs,
                input_names=artifact.input_names(),
                output_names=[OUTPUT_NAME],
                fp16_mode=self.precision == PRECISION_FP16,
                max_batch_size=self.max_batch_size,
                max_workspace_size=self.workspace_bytes,
            )
        build_s = time.perf_counter() - started
        state = module.state_dict()
        _write_atomic(engine_file, bytes(state["engine"]))
        meta = dict(
            asdict(key), input_names=list(state["input_names"]), output_names=list(state["output_names"])
        )
        meta["build_s"] = round(build_s, 3)
        _write_atomic(meta_file, json.dumps(meta, indent=2, sort_keys=True).encode())
        logger.info("tensorrt engine built in %.1f s: %s", build_s, engine_file)
        return module

    def _predict(self, arrays: List[np.ndarray]) -> np.ndarray:
        import torch

        n = arrays[0].shape[0]
        size = self.max_batch_size
        outputs = []
        for start in range(0, n, size):
            chunk = [a[start : start + size] for a in arrays]
            used = chunk[0].shape[0]
            if used < size:  # pad with copies of the last sample: the engine's batch is fixed
                chunk = [np.concatenate([c, np.repeat(c[-1:], size - used, axis=0)]) for c in chunk]
            tensors = [torch.from_numpy(np.ascontiguousarray(c)).to(self.device) for c in chunk]
            with torch.no_grad():
                out = self._module(*tensors)
            outputs.append(out.detach().float().cpu().numpy()[:used])
        return np.concatenate(outputs, axis=0)

    def describe(self) -> Dict[str, Any]:
        """Engine file, precision and whether ``load`` built it (for the status message)."""
        return {"engine": str(self.engine_file), "precision": self.precision, "built": self.built}

"""ONNX Runtime backend: the CPU default.

``load`` exports the artifact's classifier at opset 13 (``onnx_export``) into ``cache_dir`` under a key
of the artifact's sha256, the opset and the torch version (a cache hit skips the export; a file that no
longer passes the graph check is re-exported), then opens a CPU session with ``threads`` intra-op
threads (default 1: inference shares two cores with the drivers and fine-tuning), one inter-op thread
and sequential execution, so latency stays predictable. Without ``cache_dir`` the export goes to a
temporary directory that lives as long as the backend.
"""

import hashlib
import logging
import tempfile
from pathlib import Path
from typing import List, Optional, Tuple, Union

import numpy as np

from cosmo_edge.runtime.artifacts import ModelArtifact
from cosmo_edge.runtime.base import Backend, BackendError
from cosmo_edge.runtime.onnx_export import OPSET, export_onnx, graph_problems

logger = logging.getLogger(__name__)

OUTPUT_NAME = "probabilities"


def onnx_cache_path(artifact: ModelArtifact, cache_dir: Union[str, Path], opset: int = OPSET) -> Path:
    """Where the export of ``artifact`` lives in ``cache_dir`` (keyed by model hash, opset, torch)."""
    import torch

    key = hashlib.sha256(f"{artifact.sha256}|opset{opset}|torch{torch.__version__}".encode()).hexdigest()
    return Path(cache_dir) / f"model-{artifact.version}-{key[:16]}.onnx"


def _cached_export_ok(path: Path) -> bool:
    """True when ``path`` exists, parses and still passes the graph check."""
    import onnx
    from google.protobuf.message import DecodeError

    if not path.exists():
        return False
    try:
        problems = graph_problems(onnx.load(str(path)))
    except (OSError, ValueError, DecodeError) as exc:
        logger.warning("cached export %s unreadable (%s); exporting again", path, exc)
        return False
    if problems:
        logger.warning("cached export %s fails the graph check (%s); exporting again", path, problems)
    return not problems


class OnnxRuntimeBackend(Backend):
    """ONNX Runtime on the CPU execution provider."""

    name = "onnxruntime"

    def __init__(self, threads: int = 1, cache_dir: Optional[Union[str, Path]] = None) -> None:
        super().__init__()
        self.threads = int(threads)
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self._tmp: Optional[tempfile.TemporaryDirectory] = None
        self._session = None
        self._input_names: List[str] = []
        self.model_path: Optional[Path] = None

    @classmethod
    def availability(cls) -> Tuple[bool, str]:
        """Usable where onnxruntime and onnx import and the CPU provider exists."""
        try:
            import onnx  # noqa: F401  (needed for the export)
            import onnxruntime as ort
        except ImportError as exc:
            return False, f"onnxruntime/onnx do not import ({exc})"
        if "CPUExecutionProvider" not in ort.get_available_providers():
            return False, f"onnxruntime {ort.__version__} has no CPUExecutionProvider"
        return True, f"onnxruntime {ort.__version__} on CPU"

    def _export_dir(self) -> Path:
        if self.cache_dir is not None:
            return self.cache_dir
        if self._tmp is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="cosmo-edge-onnx-")
        return Path(self._tmp.name)

    def _load(self, artifact: ModelArtifact) -> None:
        import onnxruntime as ort

        path = onnx_cache_path(artifact, self._export_dir())
        if _cached_export_ok(path):
            logger.info("onnx export cache hit: %s", path)
        else:
            export_onnx(
                artifact.probability_module(),
                artifact.example_tensors(batch_size=2),
                artifact.input_names(),
                [OUTPUT_NAME],
                path,
            )
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        try:
            session = ort.InferenceSession(
                str(path), sess_options=options, providers=["CPUExecutionProvider"]
            )
        except (RuntimeError, ValueError) as exc:  # onnxruntime raises its own RuntimeError subclasses
            raise BackendError(f"onnxruntime could not open {path}: {exc}") from exc
        names = [i.name for i in session.get_inputs()]
        if names != artifact.input_names():
            raise BackendError(f"{path}: graph inputs {names}, expected {artifact.input_names()}")
        self._session = session
        self._input_names = names
        self.model_path = path

    def _predict(self, arrays: List[np.ndarray]) -> np.ndarray:
        assert self._session is not None
        feeds = dict(zip(self._input_names, arrays))
        return self._session.run([OUTPUT_NAME], feeds)[0]

"""Inference runtime: one small ``Backend`` interface over torch eager, ONNX Runtime and TensorRT.

``select_backend("auto")`` picks the fastest one that works on this machine and logs why; every backend
takes the same batch (modality -> ``(N, *shape)`` float32 arrays plus ``present`` ``(N, M)``) and
returns class probabilities ``(N, K)``.
"""

from cosmo_edge.runtime.artifacts import ModelArtifact, artifact_from_module, load_artifact
from cosmo_edge.runtime.base import (
    Backend,
    BackendError,
    BackendUnavailable,
    BatchError,
    create_backend,
    select_backend,
)

__all__ = [
    "Backend",
    "BackendError",
    "BackendUnavailable",
    "BatchError",
    "ModelArtifact",
    "artifact_from_module",
    "create_backend",
    "load_artifact",
    "select_backend",
]

"""Every available backend agrees with torch eager on random inputs (the one parity test).

Tolerances on probabilities (max absolute difference):
- onnxruntime (FP32, CPU): 1e-5; measured about 2e-8 on this model.
- tensorrt (FP16 on the Jetson): 2e-2, an assumption until measured on the device (docs/platform.md 6).
A backend that is not usable here is skipped with its reason (TensorRT needs tensorrt, torch2trt and
a CUDA GPU).
"""

import numpy as np
import pytest
from runtime_models import build_artifact

from cosmo_edge.runtime import create_backend
from cosmo_edge.runtime.base import backend_class

TOLERANCE = {"torch": 0.0, "onnxruntime": 1e-5, "tensorrt": 2e-2}


@pytest.fixture(scope="module")
def artifact():
    return build_artifact()  # imu, skeleton, depth and radar


@pytest.fixture(scope="module")
def reference(artifact):
    backend = create_backend("torch")
    backend.load(artifact)
    return backend


def _batch(artifact, seed: int):
    batch = artifact.example_batch(4, seed=seed)
    batch["present"][1] = [1, 0, 1, 0]  # masked modalities take the other code path
    batch["present"][2] = [0, 0, 0, 1]
    batch["depth"] = np.abs(batch["depth"])  # metres, background 0
    batch["depth"][:, :, :10] = 0.0
    batch["radar"][:, :, 40:] = 0.0  # padded points
    batch["radar"][3, 5] = 0.0  # one empty frame
    return batch


@pytest.mark.parametrize("name", sorted(TOLERANCE))
def test_backend_matches_torch_eager(name, artifact, reference, tmp_path) -> None:
    usable, reason = backend_class(name).availability()
    if not usable:
        pytest.skip(f"{name}: {reason}")
    backend = create_backend(name, cache_dir=tmp_path)
    backend.load(artifact)
    backend.warmup(iterations=1)
    for seed in (1, 2):
        batch = _batch(artifact, seed)
        expected = reference.predict(batch)
        got = backend.predict(batch)
        assert np.abs(got - expected).max() <= TOLERANCE[name], name
        assert np.array_equal(got.argmax(1), expected.argmax(1)) or name == "tensorrt"

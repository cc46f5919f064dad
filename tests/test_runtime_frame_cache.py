"""Per-frame feature caching: exact results, work done only for new frames, bounded memory."""

import numpy as np
import pytest
from runtime_models import build_artifact

from cosmo_edge.runtime import create_backend
from cosmo_edge.runtime.frame_cache import CachedFramePredictor, FrameFeatureCache, frame_cacheable


def test_cache_computes_only_missing_and_repeated_keys_once() -> None:
    cache = FrameFeatureCache(capacity_frames=4)
    calls = []

    def compute(frames):
        calls.append(frames[:, 0].tolist())
        return frames * 10

    frames = np.arange(4, dtype=np.float32)[:, None]
    out = cache.features([10, 11, 11, 12], frames[[0, 1, 1, 2]], compute)
    assert calls == [[0.0, 1.0, 2.0]] and out[:, 0].tolist() == [0.0, 10.0, 10.0, 20.0]
    out = cache.features([11, 12, 13], frames[1:], compute)
    assert calls[-1] == [3.0] and out[:, 0].tolist() == [10.0, 20.0, 30.0]
    assert cache.counters() == {"hits": 3, "misses": 4, "evictions": 0, "size": 4}
    cache.features([14], frames[:1], compute)  # capacity 4: evicts the least recently used key (10)
    assert cache.evictions == 1 and len(cache) == 4
    cache.features([10], frames[:1], compute)
    assert cache.misses == 6
    with pytest.raises(ValueError):
        cache.features([1, 2], frames[:1], compute)


def test_overlapping_windows_reuse_frames_and_match_eager() -> None:
    artifact = build_artifact(("imu", "depth", "radar"))
    assert frame_cacheable(artifact.model) == ["depth", "radar"]
    reference = create_backend("torch")
    reference.load(artifact)
    predictor = CachedFramePredictor(artifact, capacity_frames=128)
    rng = np.random.default_rng(0)
    depth_frames = rng.random((70, 60, 80), dtype=np.float32) * 3
    radar_frames = rng.standard_normal((35, 64, 4)).astype(np.float32)
    radar_frames[:, 40:] = 0.0
    for step in range(3):  # hop = 15 depth frames and 5 radar frames per window
        d0, r0 = 15 * step, 5 * step
        batch = artifact.example_batch(1, seed=step)
        batch["depth"] = depth_frames[None, d0 : d0 + 40]
        batch["radar"] = radar_frames[None, r0 : r0 + 20]
        keys = {"depth": np.arange(d0, d0 + 40)[None], "radar": np.arange(r0, r0 + 20)[None]}
        np.testing.assert_allclose(predictor.predict(batch, keys), reference.predict(batch), atol=1e-5)
    counters = predictor.counters()
    assert counters["depth"]["misses"] == 40 + 15 + 15 and counters["depth"]["hits"] == 25 + 25
    assert counters["radar"]["misses"] == 20 + 5 + 5 and counters["radar"]["hits"] == 15 + 15


def test_rejects_modalities_without_a_frame_split() -> None:
    artifact = build_artifact(("imu", "depth"))
    with pytest.raises(ValueError, match="imu"):
        CachedFramePredictor(artifact, modalities=["imu"])
    predictor = CachedFramePredictor(artifact)
    batch = artifact.example_batch(1)
    with pytest.raises(ValueError, match="frame_keys"):
        predictor.predict(batch, {"depth": np.zeros((1, 39), dtype=np.int64)})

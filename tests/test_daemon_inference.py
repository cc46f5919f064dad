"""Inference loop: normalised windows in, activity.window / activity.change out, model version on each."""

import time

import numpy as np
import pytest

from cosmo_edge.daemon.activity import ActivityTracker
from cosmo_edge.daemon.inference import InferenceLoop, LatencyStats
from cosmo_edge.daemon.predictor import WindowPredictor, frame_keys
from cosmo_edge.daemon.wiring import WindowTiming, make_cutter
from cosmo_edge.preprocess import Normalization
from cosmo_edge.ring import Ring
from cosmo_edge.runtime.torch_backend import TorchBackend
from cosmo_edge.windows import StreamChannel, ring_layout
from drivers.sample import Sample

pytest.importorskip("torch")
from runtime_models import build_artifact  # noqa: E402

MODALITIES = ("imu", "depth", "radar")
RATES = {"imu": 100.0, "depth": 30.0, "radar": 20.0}
T0_NS = 10**9


def _channels(seconds=4.0, seed=0):
    rng = np.random.default_rng(seed)
    channels = {}
    for m, rate in RATES.items():
        channel = StreamChannel(m, Ring.for_duration(seconds + 1, rate, ring_layout(m), name=m))
        for k in range(int(seconds * rate)):
            if m == "imu":
                data = rng.normal(0, 1, 6).astype(np.float32)
            elif m == "depth":
                data = (2.0 + rng.random((120, 160))).astype(np.float32)
            else:
                data = np.concatenate(
                    [rng.normal(0, 0.3, (12, 3)) + [0, 2.5, 0], rng.normal(0, 1, (12, 1))], 1
                )
            channel.push(Sample(m, None, T0_NS + int(k / rate * 1e9), data.astype(np.float32), k))
        channels[m] = channel
    return channels


@pytest.fixture(scope="module")
def artifact():
    art = build_artifact(MODALITIES, num_classes=4)
    art.normalization = Normalization(
        {"imu": {"mean": [0.5] * 3 + [1.0] * 3, "std": [2.0] * 3 + [3.0] * 3}, "depth": None, "radar": None}
    ).to_dict()
    return art


@pytest.fixture(scope="module")
def backend(artifact):
    torch_backend = TorchBackend(threads=1)
    torch_backend.load(artifact)
    return torch_backend


def _cutter(channels):
    return make_cutter(MODALITIES, channels, RATES, WindowTiming(2.0, 0.5, 0.0))


def test_window_is_normalised_with_the_checkpoint_statistics(artifact, backend):
    channels = _channels()
    window = _cutter(channels).cut(T0_NS + 3 * 10**9)
    predictor = WindowPredictor(artifact, backend, frame_cache="off")
    batch = predictor.batch(window)
    np.testing.assert_allclose(batch["imu"][0, :, 0], (window.inputs["imu"][:, 0] - 0.5) / 2.0, rtol=1e-6)
    np.testing.assert_array_equal(batch["depth"][0], window.inputs["depth"])
    direct = backend.predict(batch)[0]
    np.testing.assert_allclose(predictor.predict(window, channels), direct, rtol=1e-6)


def test_frame_cache_gives_the_backend_probabilities_and_reuses_frames(artifact, backend):
    channels = _channels(seconds=5.0)
    cutter = _cutter(channels)
    plain = WindowPredictor(artifact, backend, frame_cache="off")
    cached = WindowPredictor(artifact, backend, frame_cache="auto")  # torch backend: cache on
    assert cached.engine == "torch+frame-cache" and plain.engine == "torch"
    for end_s in (2.5, 3.0, 3.5):
        window = cutter.cut(T0_NS + int(end_s * 1e9))
        np.testing.assert_allclose(
            cached.predict(window, channels), plain.predict(window, channels), atol=1e-5
        )
    frames = cached.cache_counters()["frames"]
    assert frames["depth"]["hits"] > 0 and frames["radar"]["hits"] > 0
    assert cached.counters["cached"] == 3 and cached.counters["cache_bypass"] == 0


def test_frame_keys_are_the_stamps_the_cutter_picked():
    channels = _channels()
    window = _cutter(channels).cut(T0_NS + 3 * 10**9)
    keys = frame_keys(window, channels, {"depth": 40, "radar": 20})
    assert keys["depth"].shape == (40,) and keys["radar"].shape == (20,)
    assert np.all(np.diff(keys["depth"]) >= 0)
    assert window.t_start_ns <= keys["depth"][0] and keys["depth"][-1] <= window.t_end_ns
    window.counts["depth"] += 1  # as if the ring had changed since the cut
    assert frame_keys(window, channels, {"depth": 40}) is None


def test_process_publishes_window_and_change_with_the_model_version(artifact, backend):
    channels = _channels(seconds=6.0)
    predictor = WindowPredictor(artifact, backend, frame_cache="off")
    sent = []
    loop = InferenceLoop(
        _cutter(channels),
        channels,
        predictor,
        lambda t, p: sent.append((t, p)),
        ActivityTracker(confirm_windows=2, min_confidence=0.0),
    )
    for end_s in (3.0, 3.5, 4.0):
        payload = loop.process(loop.cutter.cut(T0_NS + int(end_s * 1e9)))
        assert payload is not None
    windows = [p for t, p in sent if t == "activity.window"]
    changes = [p for t, p in sent if t == "activity.change"]
    assert len(windows) == 3
    assert all(p["model_version"] == artifact.version for p in windows + changes)
    assert sorted(windows[0]["probabilities"]) == sorted(artifact.label_names)
    assert windows[0]["window_end_ns"] - windows[0]["window_start_ns"] == 2 * 10**9
    assert windows[0]["last_sample_ns"] <= windows[0]["window_end_ns"]
    assert windows[0]["present"] == {"imu": True, "depth": True, "radar": True}
    if len({p["label"] for p in windows}) == 1:  # a stable label is reported once, as a change from None
        assert len(changes) == 1 and changes[0]["previous_label"] is None
    assert loop.status()["counters"]["published"] == 3


def test_window_with_nothing_present_is_counted_not_published(artifact, backend):
    channels = _channels()
    sent = []
    loop = InferenceLoop(
        _cutter(channels), channels, WindowPredictor(artifact, backend, "off"), lambda t, p: sent.append(t)
    )
    assert loop.process(loop.cutter.cut(T0_NS + 60 * 10**9)) is None  # everything stale by then
    assert sent == [] and loop.counters["windows_empty"] == 1


def test_running_loop_cuts_on_the_hop_grid_and_stops(artifact, backend):
    now = time.monotonic_ns()
    channels = {}
    for m, rate in RATES.items():
        channel = StreamChannel(m, Ring.for_duration(30, rate, ring_layout(m), name=m))
        shape = {"imu": (6,), "depth": (60, 80), "radar": (5, 4)}[m]
        for k in range(int(20 * rate)):
            data = np.full(shape, 1.0, np.float32)
            channel.push(Sample(m, None, now - int((20 - k / rate) * 1e9), data, k))
        channels[m] = channel
    sent = []
    cutter = make_cutter(MODALITIES, channels, RATES, WindowTiming(2.0, 0.05, 0.0, stale_s=60.0))
    loop = InferenceLoop(
        cutter, channels, WindowPredictor(artifact, backend, "off"), lambda t, p: sent.append(p)
    )
    loop.start()
    time.sleep(0.4)
    loop.stop()
    loop.join(2.0)
    assert not loop.is_alive()
    ends = [
        p["window_end_ns"] for p in sent if "window_end_ns" in p and "label" in p and "window_start_ns" in p
    ]
    assert len(ends) >= 3
    assert all(d > 0 and d % 50_000_000 == 0 for d in np.diff(ends))  # on the grid (a busy hop is skipped)


def test_latency_stats():
    stats = LatencyStats(history=100)
    assert stats.summary()["p99"] is None
    for v in range(1, 101):
        stats.add(float(v))
    summary = stats.summary()
    assert summary["p50"] == pytest.approx(50.5) and summary["max"] == 100.0
    assert 1.0 < summary["ema"] < 100.0

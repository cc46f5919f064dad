"""Window cutting: training preparation on live rings, stale / too-few / timebase masking, radar packing."""

from typing import Dict

import numpy as np
import pytest

from cosmo_edge import preprocess
from cosmo_edge.ring import Ring
from cosmo_edge.timebase import StreamTimebase, TimebaseConfig
from cosmo_edge.windows import (
    RADAR_FRAMES,
    RADAR_MAX_POINTS,
    ModalitySpec,
    StreamChannel,
    WindowConfig,
    WindowConfigError,
    WindowCutter,
    pack_radar_points,
    radar_point_mask,
    ring_layout,
    to_ring_sample,
)
from drivers.sample import Sample

S = 1_000_000_000  # ns per second


def channel(modality: str, seconds: float = 10.0, rate_hz: float = 100.0) -> StreamChannel:
    return StreamChannel(modality, Ring.for_duration(seconds, rate_hz, ring_layout(modality), name=modality))


def fill_imu(ch: StreamChannel, t0_s: float, t1_s: float, rate_hz: float = 100.0) -> np.ndarray:
    """Write a ramp signal at exact times; returns the timestamps (ns)."""
    stamps = np.arange(int(t0_s * rate_hz), int(t1_s * rate_hz)) * int(S / rate_hz)
    for t in stamps:
        ch.ring.write(int(t), np.full(6, t / S, np.float32) + np.arange(6, dtype=np.float32))
    return stamps


def test_imu_window_is_the_training_preparation_of_its_samples() -> None:
    imu = channel("imu")
    fill_imu(imu, 0.0, 5.0)
    cutter = WindowCutter(WindowConfig(modalities=("imu",)), {"imu": imu})
    window = cutter.cut(4 * S)
    stamps, raw = imu.ring.read_range(2 * S, 4 * S)
    assert window.present["imu"] and window.reasons["imu"] == "ok"
    assert window.counts["imu"] == 201  # both ends inclusive at 100 Hz
    np.testing.assert_array_equal(window.inputs["imu"], preprocess.prepare_imu(raw))
    assert window.inputs["imu"].shape == (120, 6) and window.inputs["imu"].dtype == np.float32
    assert (window.t_start_ns, window.t_end_ns) == (2 * S, 4 * S)
    assert window.inputs["imu"][0, 0] == pytest.approx(2.0) and window.inputs["imu"][-1, 0] == pytest.approx(
        4.0
    )


def test_absent_stale_and_too_few_are_masked_with_zeros() -> None:
    imu = channel("imu")
    fill_imu(imu, 0.0, 3.0)  # the stream stops at 3 s
    config = WindowConfig(modalities=("imu", "skeleton"), specs={"imu": ModalitySpec(100.0, stale_s=5.0)})
    cutter = WindowCutter(config, {"imu": imu})
    w_ok = cutter.cut(3 * S)
    w_short = cutter.cut(int(4.5 * S))  # 0.5 s of data in a 2 s window
    w_stale = cutter.cut(9 * S)  # newest sample 6 s old
    assert w_ok.present == {"imu": True, "skeleton": False}
    assert w_ok.reasons["skeleton"] == "absent"
    assert w_ok.inputs["skeleton"].shape == (40, 20, 3) and not w_ok.inputs["skeleton"].any()
    assert w_short.reasons["imu"] == "too_few" and w_short.counts["imu"] == 50
    assert not w_short.inputs["imu"].any()
    assert w_stale.reasons["imu"] == "stale" and not w_stale.present["imu"]
    assert [w.window_id for w in (w_ok, w_short, w_stale)] == [0, 1, 2]
    assert w_short.present_vector(["skeleton", "imu"]).tolist() == [0.0, 0.0]
    assert w_ok.present_vector(["skeleton", "imu"]).tolist() == [0.0, 1.0]


def test_timebase_warmup_and_reset_mask_the_modality() -> None:
    imu = channel("imu", seconds=30)
    imu.timebase = StreamTimebase(TimebaseConfig(tick_s=1.0), name="imu")
    cutter = WindowCutter(WindowConfig(modalities=("imu",)), {"imu": imu})
    host0 = 100 * S
    outs: Dict[float, int] = {}
    for i in range(2000):  # 20 s at 100 Hz; the device restarts at 12 s
        device_s = i / 100 if i < 1200 else (i - 1200) / 100
        t = imu.timebase.update(device_s, host0 + i * S // 100 + 2_000_000)
        imu.ring.write(t, np.zeros(6, np.float32))
        outs[i / 100] = t
    assert cutter.cut(outs[4.0]).reasons["imu"] == "timebase", "still warming at 4 s"
    assert cutter.cut(outs[9.0]).present["imu"]
    assert cutter.cut(outs[13.0]).reasons["imu"] == "timebase", "the reset at 12 s is inside"
    assert cutter.cut(outs[19.9]).present["imu"], "locked again 5 s after the reset"


def test_depth_reduced_at_ingest_equals_preparing_full_frames() -> None:
    rng = np.random.default_rng(0)
    for hw in [(480, 640), (240, 320)]:
        depth = channel("depth", seconds=4, rate_hz=30)
        full = []
        for i in range(75):  # 2.5 s at 30 fps
            frame = np.where(rng.random(hw) < 0.1, rng.uniform(0.5, 4.0, hw), 0.0).astype(np.float32)
            sample = Sample("depth", i / 30, i * S // 30, frame, seq=i)
            assert depth.push(sample)
            full.append(frame)
        cutter = WindowCutter(WindowConfig(modalities=("depth",)), {"depth": depth})
        window = cutter.cut(74 * S // 30)
        in_window = [f for i, f in enumerate(full) if window.t_start_ns <= i * S // 30 <= window.t_end_ns]
        expected = preprocess.prepare_depth(np.stack(in_window), depth_scale_m=1.0)
        assert window.present["depth"] and window.counts["depth"] == len(in_window) == 61
        np.testing.assert_array_equal(window.inputs["depth"], expected)


def test_radar_packing_matches_the_model_convention() -> None:
    torch = pytest.importorskip("torch")
    radar_model = pytest.importorskip("models.radar")
    assert (RADAR_FRAMES, RADAR_MAX_POINTS) == (radar_model.RADAR_FRAMES, radar_model.RADAR_MAX_POINTS)
    rng = np.random.default_rng(1)
    for n in [0, 1, 10, 64, 65, 100, 137, 300]:
        points = rng.uniform(-3, 3, (n, 4)).astype(np.float32)
        if n > 5:
            points[:3, :3] = 0.001  # closer than MIN_RANGE_M: dropped by both
        ours = pack_radar_points(points)
        reference = radar_model.pack_frame_points(torch.from_numpy(points)).numpy()
        np.testing.assert_array_equal(ours, reference)
        np.testing.assert_array_equal(
            radar_point_mask(ours), radar_model.valid_point_mask(torch.from_numpy(ours)).numpy() > 0
        )


def test_radar_window_is_fixed_size_with_a_point_mask() -> None:
    radar = channel("radar", seconds=5, rate_hz=20)
    rng = np.random.default_rng(2)
    counts = []
    for i in range(60):  # 3 s at 20 Hz, 0..99 points per frame
        n = int(rng.integers(0, 100))
        counts.append(n)
        pts = rng.uniform(0.5, 3, (n, 4)).astype(np.float32)
        radar.push(Sample("radar", i / 20, i * S // 20, pts, seq=i))
    cutter = WindowCutter(WindowConfig(modalities=("radar",)), {"radar": radar})
    window = cutter.cut(59 * S // 20)
    assert window.inputs["radar"].shape == (20, 64, 4) and window.present["radar"]
    assert window.counts["radar"] == 41
    mask = window.masks["radar"]
    frame_ids = 19 + preprocess.nearest_frame_indices(41, 20)
    assert mask.sum(axis=1).tolist() == [min(counts[i], 64) for i in frame_ids]
    assert not window.inputs["radar"][~mask].any(), "padding rows are exact zeros"


def test_poll_follows_the_hop_grid_and_counts_skipped_hops() -> None:
    imu = channel("imu")
    fill_imu(imu, 0.0, 10.0)
    cutter = WindowCutter(WindowConfig(modalities=("imu",), hop_s=0.5, delay_s=0.1), {"imu": imu})
    first = cutter.poll(3 * S)
    assert first is not None and first.t_end_ns == int(2.9 * S)
    assert cutter.poll(int(3.3 * S)) is None
    second = cutter.poll(int(3.5 * S))
    assert second is not None and second.t_end_ns == int(3.4 * S)
    third = cutter.poll(int(5.2 * S))  # 3.9, 4.4 and 4.9 are due: only the newest is cut
    assert third is not None and third.t_end_ns == int(4.9 * S)
    assert cutter.counters["skipped_hops"] == 2 and cutter.counters["windows"] == 3


def test_configuration_errors_name_the_problem() -> None:
    with pytest.raises(WindowConfigError, match="hop_s"):
        WindowConfig(hop_s=0)
    with pytest.raises(WindowConfigError, match="lidar"):
        WindowConfig(modalities=("lidar",))
    wrong = StreamChannel("imu", Ring(10, (3,)))
    with pytest.raises(WindowConfigError, match="imu"):
        WindowCutter(WindowConfig(modalities=("imu",)), {"imu": wrong})


def test_to_ring_sample_layouts() -> None:
    assert to_ring_sample("imu", np.arange(6)).dtype == np.float32
    assert to_ring_sample("skeleton", np.zeros((20, 3))).shape == (20, 3)
    assert to_ring_sample("depth", np.ones((480, 640), np.float32)).shape == (60, 80)
    assert to_ring_sample("radar", np.zeros((0, 4))).shape == (64, 4)

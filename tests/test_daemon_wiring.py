"""Shared ingest wiring: ring sizes known before allocation, host durations scaled by the speed."""

import pytest

from cosmo_edge.daemon.wiring import WindowTiming, make_channel, make_cutter, ring_bytes
from drivers.base import DeviceClock


@pytest.mark.parametrize("modality, rate_hz", [("imu", 100.0), ("depth", 30.0), ("radar", 20.0)])
def test_ring_bytes_match_the_allocated_ring(modality, rate_hz):
    timing = WindowTiming(window_s=2.0, hop_s=0.5, delay_s=0.1)
    channel = make_channel(modality, DeviceClock("device", tick_s=1e-6), rate_hz, timing)
    assert channel.ring.nbytes == ring_bytes(modality, rate_hz, timing.ring_s)
    assert channel.ring.capacity >= int(rate_hz * (timing.window_s + timing.hop_s))


def test_speed_scales_host_durations_but_not_the_samples_per_window():
    timing = WindowTiming(window_s=2.0, hop_s=0.5, delay_s=0.1, stale_s=5.0, speed=4.0)
    channel = make_channel("imu", DeviceClock("device", tick_s=1e-6), 100.0, timing, {"bucket_s": 1.0})
    assert channel.timebase.config.bucket_s == pytest.approx(0.25)
    assert channel.timebase.config.time_scale == 4.0
    assert (
        channel.ring.capacity
        == make_channel("imu", DeviceClock("device"), 100.0, WindowTiming()).ring.capacity
    )
    cutter = make_cutter(["imu", "depth"], {"imu": channel}, {"imu": 100.0}, timing)
    assert cutter.config.window_s == pytest.approx(0.5) and cutter.config.hop_s == pytest.approx(0.125)
    assert cutter.config.specs["imu"].min_samples(cutter.config.window_s) == 160  # 80 % of 2 s at 100 Hz
    assert cutter.config.specs["imu"].stale_s == pytest.approx(1.25)


def test_index_clocked_streams_keep_their_wide_drift_clamp():
    clock = DeviceClock("index", tick_s=0.1, max_drift_ppm=50_000)
    channel = make_channel("imu", clock, 10.0, WindowTiming(), {"max_drift_ppm": 2000.0})
    assert channel.timebase.config.max_drift_ppm == 50_000

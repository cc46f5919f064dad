"""Activity scripts, ground truth, device clocks and the simulated pty device."""

import os

import numpy as np
import pytest

from drivers.sim.body import ACTIVITIES
from drivers.sim.clock import ClockModel, Timeline, arrival_times_ns
from drivers.sim.pty_device import PtyDevice
from drivers.sim.script import build_segments, parse_script, read_ground_truth, write_ground_truth


def test_inline_and_file_scripts(tmp_path) -> None:
    assert parse_script("walk:5, wave:2.5") == [("walk", 5.0), ("wave", 2.5)]
    path = tmp_path / "script.txt"
    path.write_text("# warm-up\nstand_still 3\nsquat,4  # deep ones\n\n")
    assert parse_script(str(path)) == [("stand_still", 3.0), ("squat", 4.0)]
    for bad in ("walk", "walk:x", "walk:-1", ""):
        with pytest.raises(ValueError):
            parse_script(bad)


def test_segments_and_ground_truth(tmp_path) -> None:
    segments = build_segments([("wave", 2.0), ("clap", 3.0)], ACTIVITIES, repeat=2)
    assert [(s.activity, s.start_s, s.end_s) for s in segments] == [
        ("wave", 0.0, 2.0),
        ("clap", 2.0, 5.0),
        ("wave", 5.0, 7.0),
        ("clap", 7.0, 10.0),
    ]
    assert segments[1].label == ACTIVITIES.index("clap")
    with pytest.raises(ValueError, match="unknown activity 'dance'"):
        build_segments([("dance", 1.0)], ACTIVITIES)
    path = str(tmp_path / "gt.jsonl")
    write_ground_truth(path, segments, t0_ns=10**12, speed=10.0)
    rows = read_ground_truth(path)
    assert rows[1]["activity"] == "clap" and rows[1]["start_ns"] == 10**12 + 200_000_000
    assert rows[-1]["end_ns"] == 10**12 + 1_000_000_000 and rows[-1]["sim_end_s"] == 10.0


def test_clock_model_round_trip_and_drift() -> None:
    clock = ClockModel(offset_s=100.0, drift_ppm=50.0)
    sim = np.array([0.0, 10.0, 1000.0])
    np.testing.assert_allclose(clock.device_time(sim), [100.0, 100.0005 + 10.0, 100.0 + 1000.05])
    np.testing.assert_allclose(clock.sim_time(clock.device_time(sim)), sim)
    timeline = Timeline(t0_ns=5_000_000_000, speed=10.0)
    assert timeline.host_ns(np.array([10.0]))[0] == 6_000_000_000
    assert timeline.sim_s(6_000_000_000) == pytest.approx(10.0)


def test_arrivals_are_late_and_ordered() -> None:
    clock = ClockModel(jitter_s=0.005, latency_s=0.001)
    emit = np.arange(0, 1_000_000_000, 10_000_000, dtype=np.int64)
    arrivals = arrival_times_ns(emit, clock, np.random.default_rng(0), previous_ns=0)
    assert (arrivals >= emit + 1_000_000).all() and (np.diff(arrivals) >= 0).all()
    assert 3e6 < (arrivals - emit).mean() < 8e6  # latency 1 ms + mean jitter 5 ms


def test_pty_device_drops_when_nobody_reads(tmp_path) -> None:
    pty = PtyDevice(os.path.join(tmp_path, "dev"))
    pty.plug()
    try:
        first_target = os.readlink(pty.link_path)
        written = sum(pty.write(b"x" * 4096) for _ in range(64))
        assert written < 64 * 4096 and pty.bytes_dropped == 64 * 4096 - written
        pty.unplug()
        assert not os.path.lexists(pty.link_path) and pty.write(b"abc") == 0
        pty.plug()
        assert os.path.exists(pty.link_path) and os.readlink(pty.link_path).startswith("/dev/pts/")
        assert first_target.startswith("/dev/pts/")
    finally:
        pty.close()

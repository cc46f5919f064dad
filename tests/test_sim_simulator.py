"""The simulator end to end: every stream through its real driver, timestamps, ground truth, replug."""

import time

import numpy as np
import pytest
from drivers_sim_support import run_drivers

from drivers.sim import DepthSimConfig, ImuSimConfig, RadarSimConfig, SimConfig, Simulator
from drivers.sim.clock import ClockModel
from drivers.sim.script import read_ground_truth


@pytest.mark.slow
def test_every_stream_arrives_through_its_driver(tmp_path) -> None:
    pytest.importorskip("pyrealsense2")
    imu_clock = ClockModel(offset_s=4294.0, drift_ppm=40.0)  # t_us wraps about 1 s in
    config = SimConfig(
        script="walk:2,wave:2",
        speed=4.0,
        out_dir=str(tmp_path),
        start_delay_s=0.3,
        imu=ImuSimConfig(clock=imu_clock),
        depth=DepthSimConfig(width=160, height=120, clock=ClockModel(offset_s=10.0)),
    )
    sim = Simulator(config).start()
    try:
        got, drivers = run_drivers(sim)
        sent = sim.counters()
    finally:
        sim.stop()
    imu, depth, radar = got["imu"], got["depth"], got["radar"]
    assert sent["sim-imu_sent"] == 401
    if sent["imu_bytes_dropped"] == 0:  # a starved reader lets the pty buffer overflow
        assert len(imu) == 401
    else:
        assert len(imu) > 0.8 * 401
    assert len(depth) == sent["sim-depth_sent"] == 121
    assert len(radar) == sent["sim-radar_sent"] >= 40
    for driver in drivers.values():
        assert driver.counters["frames_bad"] == 0, driver.counters

    # IMU: unwrap t_us, map back to simulation time, compare with the noise-free motion.
    raw = np.array([s.t_device_s for s in imu])
    unwrapped = raw + 2**32 * 1e-6 * np.cumsum(np.r_[0, np.diff(raw) < 0])
    np.testing.assert_allclose(np.diff(unwrapped), 0.01, atol=2e-6)
    sim_s = imu_clock.sim_time(unwrapped)
    expected = sim.source.imu(sim_s)
    data = np.stack([s.data for s in imu])
    assert np.abs(data[:, :3] - expected[:, :3]).max() < 0.06  # noise 0.01 g, 1/2048 g counts
    assert np.abs(data[:, 3:] - expected[:, 3:]).max() < 2.5  # noise 0.3 deg/s, 1/16.4 deg/s counts

    # Depth: frame numbers from 1, device clock in us, metres, body pixels only.
    assert [s.seq for s in depth[:3]] == [1, 2, 3]
    np.testing.assert_allclose([s.t_device_s for s in depth[:2]], [10.0, 10.0 + 1 / 30], atol=1e-6)
    assert depth[30].data.shape == (120, 160) and 2.0 < depth[30].data.max() < 4.0

    # Radar: frame period from the .cfg, points in the TI frame (y = range, about 2-4 m).
    assert np.diff([s.t_device_s for s in radar[:5]]) == pytest.approx([0.05] * 4)
    points = np.concatenate([s.data for s in radar])
    assert 1.5 < np.median(points[:, 1]) < 4.0

    # Ground truth: host monotonic times of each segment; samples land inside the run.
    truth = read_ground_truth(sim.ground_truth_path)
    assert [row["activity"] for row in truth] == ["walk", "wave"]
    assert truth[1]["start_ns"] - truth[0]["start_ns"] == pytest.approx(0.5e9, abs=1e3)
    assert truth[0]["start_ns"] <= imu[0].t_host_ns and imu[-1].t_host_ns < truth[-1]["end_ns"] + 0.3e9


@pytest.mark.slow
def test_imu_unplugged_and_replugged_mid_run(tmp_path) -> None:
    config = SimConfig(script="stand_still:2.5", speed=1.0, out_dir=str(tmp_path), start_delay_s=0.2)
    config.depth.enabled = config.radar.enabled = False

    def replug(sim: Simulator) -> None:
        time.sleep(0.9)
        sim.unplug("imu")
        time.sleep(0.4)
        sim.plug("imu")

    sim = Simulator(config).start()
    try:
        got, drivers = run_drivers(sim, during=replug)
    finally:
        sim.stop()
    counters = drivers["imu"].counters
    assert counters["disconnects"] == 1 and counters["reconnects"] == 1
    times = np.array([s.t_device_s for s in got["imu"]])
    gaps = np.diff(times)
    assert gaps.max() > 0.3  # the unplugged stretch is missing
    assert (times > times[0] + 1.5).any()  # and samples came back after it
    assert counters["frames_bad"] == 0


@pytest.mark.parametrize("protocol", ["witmotion", "mpu6050_text"])
def test_other_imu_protocols(tmp_path, protocol: str) -> None:
    config = SimConfig(
        script="wave:1",
        speed=5.0,
        out_dir=str(tmp_path),
        start_delay_s=0.2,
        imu=ImuSimConfig(protocol=protocol, rate_hz=50.0, accel_fs_g=4, gyro_fs_dps=2000),
        radar=RadarSimConfig(enabled=False),
    )
    config.depth.enabled = False
    sim = Simulator(config).start()
    try:
        got, _ = run_drivers(sim, extra_s=0.3)
    finally:
        sim.stop()
    samples = got["imu"]
    assert len(samples) == 51
    assert np.diff([s.t_device_s for s in samples]) == pytest.approx([0.02] * 50, abs=1e-3)
    accel = np.stack([s.data[:3] for s in samples])
    assert np.abs(np.linalg.norm(accel, axis=1).mean() - 1.0) < 0.5

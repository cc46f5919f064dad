"""Replay of UTD-MHAD recordings through the wire formats (needs the dataset; skipped without it)."""

import os
import pathlib

import numpy as np
import pytest
from drivers_sim_support import run_drivers

from drivers.sim import DepthSimConfig, ImuSimConfig, SimConfig, Simulator
from drivers.sim.clock import ClockModel
from drivers.sim.utd_replay import UtdReplay, parse_trial

REPO = pathlib.Path(__file__).resolve().parents[1]


def data_root():
    for candidate in (os.environ.get("COSMO_DATA"), str(REPO.parent / "shared" / "data" / "utd-mhad")):
        if candidate and os.path.isdir(os.path.join(candidate, "Inertial")):
            return candidate
    pytest.skip("UTD-MHAD not found (set COSMO_DATA or place it at ../shared/data/utd-mhad)")


def test_parse_trial() -> None:
    assert parse_trial("a23_s6_t4") == (23, 6, 4)
    with pytest.raises(ValueError):
        parse_trial("wave")


@pytest.mark.dataset
def test_source_plays_recorded_values() -> None:
    import scipy.io

    root = data_root()
    source = UtdReplay(root, ["a3_s1_t1", "a23_s2_t1"])
    assert [s.activity for s in source.segments] == ["wave", "walk"]
    inertial = scipy.io.loadmat(os.path.join(root, "Inertial", "a3_s1_t1_inertial.mat"))["d_iner"]
    assert source.segments[0].end_s == pytest.approx(len(inertial) / 50.0)
    np.testing.assert_allclose(source.imu(np.arange(len(inertial)) / 50.0), inertial, atol=1e-9)
    depth = scipy.io.loadmat(os.path.join(root, "Depth", "a3_s1_t1_depth.mat"))["d_depth"]
    np.testing.assert_array_equal(source.depth_mm(0.0), depth[:, :, 0])
    np.testing.assert_array_equal(source.depth_mm(source.segments[0].end_s - 1e-9), depth[:, :, -1])
    skeleton = scipy.io.loadmat(os.path.join(root, "Skeleton", "a3_s1_t1_skeleton.mat"))["d_skel"]
    np.testing.assert_allclose(source.joints(np.array([0.0]))[0], skeleton[:, :, 0])


@pytest.mark.dataset
@pytest.mark.slow
def test_replay_through_the_drivers(tmp_path) -> None:
    import scipy.io

    pytest.importorskip("pyrealsense2")
    root = data_root()
    config = SimConfig(
        speed=10.0,
        out_dir=str(tmp_path),
        start_delay_s=0.3,
        replay_root=root,
        replay_trials=["a3_s1_t1"],
        imu=ImuSimConfig(rate_hz=50.0, clock=ClockModel()),
        depth=DepthSimConfig(width=320, height=240, clock=ClockModel()),
    )
    config.radar.enabled = False
    sim = Simulator(config).start()
    try:
        got, _ = run_drivers(sim)
    finally:
        sim.stop()
    inertial = scipy.io.loadmat(os.path.join(root, "Inertial", "a3_s1_t1_inertial.mat"))["d_iner"]
    imu = np.stack([s.data for s in got["imu"]])
    n = len(inertial)
    assert len(imu) == n + 1  # the sample at the end instant repeats the last one
    assert np.abs(imu[:n, :3] - inertial[:, :3]).max() <= 0.5 / 2048 + 1e-6  # int16 counts at 16 g
    assert np.abs(imu[:n, 3:] - inertial[:, 3:]).max() <= 0.5 / 16.4 + 1e-4  # counts at 2000 deg/s
    depth = scipy.io.loadmat(os.path.join(root, "Depth", "a3_s1_t1_depth.mat"))["d_depth"]
    frames = depth.shape[2]
    assert len(got["depth"]) > 0.8 * n / 50.0 * 30.0
    for sample in got["depth"]:
        u = min(1.0, (sample.seq - 1) / 30.0 / (n / 50.0))  # frame number -> normalised trial time
        expected = depth[:, :, int(round(u * (frames - 1)))] * 0.001
        np.testing.assert_allclose(sample.data, expected, rtol=1e-6)

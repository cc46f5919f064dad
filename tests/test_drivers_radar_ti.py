"""The radar driver against the fake demo on two ptys: config, frames, timestamps, loss, restart, replug."""

import os
import time

import numpy as np
import pytest

from drivers.base import DriverError
from drivers.radar_ti_cli import RadarConfigError
from drivers.radar_ti_parser import build_packet
from drivers.registry import create_driver
from drivers.sim.pty_device import PtyDevice
from drivers.sim.ti_radar_device import FakeTiRadar


@pytest.fixture()
def radar(tmp_path):
    cli = PtyDevice(os.path.join(tmp_path, "cli"))
    data = PtyDevice(os.path.join(tmp_path, "data"))
    cli.plug()
    data.plug()
    fake = FakeTiRadar(cli)
    fake.start()
    yield fake, cli, data
    fake.stop()
    cli.close()
    data.close()


def frame(number: int, n_points: int = 2) -> bytes:
    points = np.tile(np.array([[0.1, 1.5, 0.2, -0.5]], dtype=np.float32), (n_points, 1))
    return build_packet(number, points, snr_db=np.full(n_points, 20.0), noise_db=np.full(n_points, 30.0))


def read_n(driver, n: int, timeout_s: float = 2.0):
    out = []
    deadline = time.monotonic() + timeout_s
    while len(out) < n and time.monotonic() < deadline:
        sample = driver.read(0.1)
        if sample is not None:
            out.append(sample)
    return out


def test_configures_then_reads_frames(radar) -> None:
    fake, cli, data = radar
    driver = create_driver("radar_ti", cli_port=cli.link_path, data_port=data.link_path)
    data.write(frame(99))  # stale bytes from before sensorStart are flushed
    driver.open()
    try:
        assert fake.streaming and fake.commands[-1] == "sensorStart"
        assert driver.frame_period_s == pytest.approx(0.05)
        sent_ns = time.monotonic_ns()
        data.write(b"noise" + frame(1) + frame(2) + frame(4, n_points=0) + frame(5))
        samples = read_n(driver, 4)
    finally:
        driver.close()
    assert fake.commands[-1] == "sensorStop" and not fake.streaming
    assert [s.seq for s in samples] == [1, 2, 4, 5]
    assert [round(s.t_device_s, 6) for s in samples] == [0.0, 0.05, 0.15, 0.2]
    assert samples[0].data.shape == (2, 4) and samples[0].data.dtype == np.float32
    assert samples[2].data.shape == (0, 4)
    np.testing.assert_allclose(samples[0].data[0], [0.1, 1.5, 0.2, -0.5], rtol=1e-6)
    wire_ns = len(frame(1)) * 10 * 1e9 / 921600
    assert samples[0].t_host_ns > sent_ns - wire_ns - 1e6  # arrival minus time on the wire
    counters = driver.counters
    assert counters["frames_lost"] == 1 and counters["frames_ok"] == 4 and counters["bytes_skipped"] == 5
    assert driver.last_frame.snr_db.tolist() == [20.0, 20.0]


def test_frame_number_going_down_is_a_restart(radar) -> None:
    _, cli, data = radar
    driver = create_driver("radar_ti", cli_port=cli.link_path, data_port=data.link_path)
    driver.open()
    try:
        data.write(frame(10) + frame(11) + frame(1) + frame(2) + frame(2))
        samples = read_n(driver, 4)
    finally:
        driver.close()
    assert [s.t_device_s for s in samples] == pytest.approx([0.0, 0.05, 0.0, 0.05])
    assert driver.counters["restarts"] == 1 and driver.counters["frames_repeated"] == 1


def test_rejected_config_fails_open_with_the_line(radar) -> None:
    fake, cli, data = radar
    fake.replies["profileCfg"] = "Error -2"
    driver = create_driver("radar_ti", cli_port=cli.link_path, data_port=data.link_path, line_timeout_s=0.5)
    with pytest.raises(DriverError, match="profileCfg.*Error -2"):
        driver.open()


def test_replug_reconfigures_the_radar(radar) -> None:
    fake, cli, data = radar
    driver = create_driver(
        "radar_ti", cli_port=cli.link_path, data_port=data.link_path, backoff_initial_s=0.02
    )
    driver.open()
    try:
        data.write(frame(1) + frame(2))
        assert len(read_n(driver, 2)) == 2
        for device in (cli, data):
            device.unplug()
        fake.power_cycle()
        assert driver.read(0.2) is None
        for device in (cli, data):
            device.plug()
        deadline = time.monotonic() + 3.0
        while driver.counters["reconnects"] == 0 and time.monotonic() < deadline:
            driver.read(0.05)
        assert fake.starts == 2 and fake.streaming
        data.write(frame(1) + frame(2))
        after = read_n(driver, 2)
    finally:
        driver.close()
    assert [s.t_device_s for s in after] == pytest.approx([0.0, 0.05])
    assert driver.counters["reconnects"] == 1 and driver.counters["restarts"] == 0


def test_without_configure_needs_frame_period(tmp_path) -> None:
    with pytest.raises(DriverError, match="frame_period_s"):
        create_driver("radar_ti", data_port=str(tmp_path / "d"), configure=False)
    with pytest.raises(DriverError, match="cli_port"):
        create_driver("radar_ti", data_port=str(tmp_path / "d"))
    with pytest.raises(RadarConfigError, match="frame period"):
        create_driver("radar_ti", data_port="d", cli_port="c", max_points=1000)

"""The IMU driver on a real pty: samples and timestamps per protocol, reconnect after unplug/replug."""

import datetime
import os
import time

import numpy as np
import pytest

from drivers import imu_text, imu_witmotion
from drivers.base import DriverError
from drivers.registry import create_driver
from drivers.sim.pty_device import PtyDevice


@pytest.fixture()
def pty(tmp_path):
    device = PtyDevice(os.path.join(tmp_path, "ttyIMU"))
    device.plug()
    yield device
    device.close()


def read_n(driver, n: int, timeout_s: float = 2.0):
    samples = []
    deadline = time.monotonic() + timeout_s
    while len(samples) < n and time.monotonic() < deadline:
        sample = driver.read(0.1)
        if sample is not None:
            samples.append(sample)
    return samples


def ts_line(t_us: int, k: int) -> bytes:
    return imu_text.format_timestamped_line(t_us, (k, -k, 2048, 0, 16, -16))


def test_timestamped_text_samples(pty) -> None:
    driver = create_driver(
        "imu_serial", port=pty.link_path, baud=115200, protocol="timestamped_text", accel_fs_g=16
    )
    driver.open()
    try:
        before_ns = time.monotonic_ns()
        pty.write(b"3,0,0*1\r\n" + b"".join(ts_line(2**32 - 10_000 + 10_000 * k, k) for k in range(4)))
        samples = read_n(driver, 4)
    finally:
        driver.close()
    assert [s.seq for s in samples] == [0, 1, 2, 3]
    # Raw, wrapping device time: the timebase unwraps it (clock.wrap_ticks).
    assert [round(s.t_device_s, 6) for s in samples] == [4294.957296, 0.0, 0.01, 0.02]
    assert driver.clock.wrap_ticks == 2**32 and driver.clock.tick_s == 1e-6
    np.testing.assert_allclose(
        samples[2].data, [2 / 2048, -2 / 2048, 1.0, 0.0, 16 / 131, -16 / 131], rtol=1e-6
    )
    assert samples[0].data.dtype == np.float32 and samples[0].data.shape == (6,)
    assert all(s.t_host_ns >= before_ns for s in samples)
    assert driver.counters["frames_ok"] == 4


def test_witmotion_samples_with_chip_time(pty) -> None:
    driver = create_driver("imu_serial", port=pty.link_path, protocol="witmotion", witmotion_use_time=True)
    driver.open()
    t0 = datetime.datetime(2024, 1, 1, 12, 0, 0)
    stream = b""
    for k in range(3):
        when = t0 + datetime.timedelta(milliseconds=10 * k)
        stream += wm_cycle(when, [0.0, 0.0, 1.0], [0.0, 0.0, 100.0 * k])
    try:
        pty.write(b"\x00\x55\x99" + stream)
        samples = read_n(driver, 3)
    finally:
        driver.close()
    assert len(samples) == 3
    assert np.diff([s.t_device_s for s in samples]) == pytest.approx([0.01, 0.01])
    assert samples[2].data[5] == pytest.approx(200.0, abs=0.1)
    assert driver.counters["bytes_skipped"] >= 3 and driver.clock.kind == "device"


def wm_cycle(when, acc, gyro) -> bytes:
    return (
        imu_witmotion.build_frame(0x50, imu_witmotion.time_payload(when))
        + imu_witmotion.build_frame(0x51, imu_witmotion.words_payload(acc, 16.0))
        + imu_witmotion.build_frame(0x52, imu_witmotion.words_payload(gyro, 2000.0))
        + imu_witmotion.build_frame(0x53, imu_witmotion.words_payload([0, 0, 0], 180.0))
    )


def test_mpu6050_index_clock(pty) -> None:
    driver = create_driver(
        "imu_serial", port=pty.link_path, baud=38400, protocol="mpu6050_text", nominal_rate_hz=10
    )
    driver.open()
    lines = [imu_text.format_ag_line((0, 0, 16384, 0, 0, 131 * k)) for k in range(3)]
    try:
        pty.write(b"MPU6050 connection successful\r\n" + lines[0] + b"a/g:\tbroken\r\n" + lines[1] + lines[2])
        samples = read_n(driver, 3)
    finally:
        driver.close()
    # Bad lines keep their slot in the index clock.
    assert [round(s.t_device_s, 6) for s in samples] == [0.0, 0.2, 0.3]
    assert driver.counters["lines_other"] == 1 and driver.counters["frames_bad"] == 1
    assert driver.clock.kind == "index" and driver.clock.max_drift_ppm == 50000.0


def test_reconnect_after_unplug_and_replug(pty) -> None:
    driver = create_driver(
        "imu_serial",
        port=pty.link_path,
        protocol="timestamped_text",
        accel_fs_g=16,
        backoff_initial_s=0.02,
        backoff_max_s=0.1,
    )
    driver.open()
    try:
        pty.write(b"".join(ts_line(1000 * k, k) for k in range(3)))
        assert len(read_n(driver, 3)) == 3
        pty.unplug()
        assert driver.read(0.3) is None  # no exception while the device is away
        assert driver.counters["disconnects"] == 1 and driver.counters["reconnects"] == 0
        pty.plug()
        deadline = time.monotonic() + 3.0
        while driver.counters["reconnects"] == 0 and time.monotonic() < deadline:
            driver.read(0.05)
        assert driver.counters["reconnects"] == 1
        pty.write(b"".join(ts_line(1000 * k, k) for k in range(10, 13)))
        after = read_n(driver, 3)
    finally:
        driver.close()
    assert [int(s.data[0] * 2048) for s in after] == [10, 11, 12]
    assert driver.counters["frames_bad"] == 0


def test_reconnect_when_only_the_path_vanishes(pty) -> None:
    driver = create_driver(
        "imu_serial", port=pty.link_path, protocol="timestamped_text", backoff_initial_s=0.02
    )
    driver.open()
    try:
        target = os.readlink(pty.link_path)
        os.unlink(pty.link_path)
        deadline = time.monotonic() + 3.0
        while driver.counters["disconnects"] == 0 and time.monotonic() < deadline:
            driver.read(0.1)
        assert driver.counters["disconnects"] == 1
        os.symlink(target, pty.link_path)
        while driver.counters["reconnects"] == 0 and time.monotonic() < deadline:
            driver.read(0.05)
        assert driver.counters["reconnects"] == 1
    finally:
        driver.close()


def test_open_fails_clearly_when_port_is_missing(tmp_path) -> None:
    driver = create_driver("imu_serial", port=str(tmp_path / "nothing"), protocol="witmotion")
    with pytest.raises(DriverError, match="cannot open serial port"):
        driver.open()


def test_bad_config_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown IMU protocol"):
        create_driver("imu_serial", port="/dev/null", protocol="nmea")
    with pytest.raises(ValueError, match="full scale"):
        create_driver("imu_serial", port="/dev/null", protocol="mpu6050_text", accel_fs_g=3)

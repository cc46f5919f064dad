"""The RealSense driver fed by a pyrealsense2 software_device: pixels, numbers, timestamps, scale."""

import numpy as np
import pytest

pytest.importorskip("pyrealsense2")

from drivers.base import DriverError  # noqa: E402
from drivers.realsense_depth import area_downsample  # noqa: E402
from drivers.registry import create_driver  # noqa: E402
from drivers.sim.realsense_camera import SoftwareDepthCamera  # noqa: E402

W, H = 80, 60


def test_pixels_numbers_timestamps_and_scale() -> None:
    camera = SoftwareDepthCamera(W, H, 30, depth_units_m=0.0001)
    driver = create_driver("realsense_depth", device=camera.handle, width=W, height=H, fps=30, queue_size=8)
    driver.open()
    try:
        assert driver.depth_scale_m == pytest.approx(0.0001)
        base = (np.arange(W * H, dtype=np.uint16) % 5000).reshape(H, W)
        stamps_us = [2**32 - 40_000, 2**32 - 6_667, 2**32 + 26_666]  # the device counter wraps
        for number, stamp in zip((5, 6, 8), stamps_us):
            camera.inject(base + number, number, stamp)
        samples = [driver.read(1.0) for _ in range(3)]
        assert driver.read(0.05) is None
    finally:
        driver.close()
    assert [s.seq for s in samples] == [5, 6, 8]
    assert [round(s.t_device_s, 6) for s in samples] == [4294.927296, 4294.960629, 0.026666]
    np.testing.assert_allclose(samples[2].data, (base + 8) * 0.0001, rtol=1e-6)
    assert samples[0].data.dtype == np.float32 and samples[0].data.shape == (H, W)
    assert driver.counters["frames_lost"] == 1 and driver.counters["frames_ok"] == 3
    assert driver.clock.wrap_ticks == 2**32 and driver.clock.tick_s == 1e-6


def test_downsampled_output() -> None:
    camera = SoftwareDepthCamera(W, H, 30)
    driver = create_driver(
        "realsense_depth", device=camera.handle, width=W, height=H, fps=30, output_hw=(15, 20)
    )
    driver.open()
    try:
        frame = np.zeros((H, W), dtype=np.uint16)
        frame[:4, :4] = 2000  # one full block at 2 m, half of the next block at 1 m
        frame[4:6, 4:8] = 1000
        camera.inject(frame, 1, 1000)
        sample = driver.read(1.0)
    finally:
        driver.close()
    assert sample.data.shape == (15, 20)
    assert sample.data[0, 0] == pytest.approx(2.0) and sample.data[1, 1] == pytest.approx(0.5)
    assert sample.data.sum() == pytest.approx(2.0 + 0.5)


def test_missing_profile_lists_what_is_offered() -> None:
    camera = SoftwareDepthCamera(W, H, 30)
    driver = create_driver("realsense_depth", device=camera.handle, width=640, height=480, fps=30)
    with pytest.raises(DriverError, match="640x480@30 z16 not offered; available: 80x60@30"):
        driver.open()


def test_area_downsample_requires_integer_factor() -> None:
    assert area_downsample(np.ones((480, 640), dtype=np.float32), (60, 80)).shape == (60, 80)
    with pytest.raises(ValueError):
        area_downsample(np.ones((50, 50), dtype=np.float32), (60, 80))
    with pytest.raises(ValueError, match="must divide"):
        create_driver("realsense_depth", width=640, height=480, output_hw=(70, 80))


def test_pipeline_mode_without_a_camera_fails_clearly() -> None:
    import pyrealsense2 as rs

    if len(rs.context().query_devices()) > 0:
        pytest.skip("a real camera is attached")
    with pytest.raises(DriverError, match=r"no RealSense camera can stream depth 640x480@30 z16 \(0 device"):
        create_driver("realsense_depth").open()

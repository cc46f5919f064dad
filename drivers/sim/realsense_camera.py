"""A software RealSense depth camera: ``rs.software_device`` with one z16 depth stream.

Frames are injected with ``on_video_frame`` (platform.md section 3): pixels in the sensor's depth
units, the timestamp in ms on the ``hardware_clock`` domain, the frame number, and the metadata a
D400 sends (``frame_timestamp`` in us on a 32-bit counter that wraps, ``frame_counter``). The
driver opens the device's depth sensor and starts it into its own queue; frames injected while
no one has started the sensor are dropped by librealsense, as a camera's frames are when no one
streams.
"""

import logging
import threading
from typing import Any

import numpy as np

from drivers.realsense_depth import import_pyrealsense2

logger = logging.getLogger(__name__)

US_WRAP = 1 << 32
FOCAL_PER_WIDTH = 0.906


class SoftwareDepthCamera:
    """One software device with a depth sensor of ``width`` x ``height`` at ``fps``.

    Args:
        width, height, fps: the only profile the sensor offers (z16).
        depth_units_m: metres per z16 unit (the D400 default 0.001).
    """

    def __init__(
        self, width: int = 640, height: int = 480, fps: int = 30, depth_units_m: float = 0.001
    ) -> None:
        rs = import_pyrealsense2()
        self._rs = rs
        self.width, self.height, self.fps = int(width), int(height), int(fps)
        self.depth_units_m = float(depth_units_m)
        self.device = rs.software_device()
        self.device.register_info(rs.camera_info.name, "cosmo-edge software depth camera")
        self.device.register_info(rs.camera_info.serial_number, "SIM0001")
        self._sensor = self.device.add_sensor("Depth")
        intrinsics = rs.intrinsics()
        intrinsics.width, intrinsics.height = self.width, self.height
        intrinsics.fx = intrinsics.fy = FOCAL_PER_WIDTH * self.width
        intrinsics.ppx, intrinsics.ppy = (self.width - 1) / 2.0, (self.height - 1) / 2.0
        intrinsics.model = rs.distortion.brown_conrady
        intrinsics.coeffs = [0.0] * 5
        stream = rs.video_stream()
        stream.type, stream.index, stream.uid = rs.stream.depth, 0, 0
        stream.width, stream.height, stream.fps, stream.bpp = self.width, self.height, self.fps, 2
        stream.fmt, stream.intrinsics = rs.format.z16, intrinsics
        self._profile = self._sensor.add_video_stream(stream).as_video_stream_profile()
        self._sensor.add_read_only_option(rs.option.depth_units, self.depth_units_m)
        self._lock = threading.Lock()
        self.frames_injected = 0

    def inject(self, depth_units: np.ndarray, frame_number: int, device_time_us: int) -> None:
        """Push one frame: ``depth_units`` (height, width) uint16, the device clock in us (wrapped here)."""
        rs = self._rs
        pixels = np.ascontiguousarray(depth_units, dtype=np.uint16)
        if pixels.shape != (self.height, self.width):
            raise ValueError(f"frame is {pixels.shape}, the stream is {(self.height, self.width)}")
        stamp_us = int(device_time_us) % US_WRAP
        frame = rs.software_video_frame()
        frame.pixels = pixels
        frame.stride, frame.bpp = self.width * 2, 2
        frame.timestamp = stamp_us / 1000.0
        frame.domain = rs.timestamp_domain.hardware_clock
        frame.frame_number = int(frame_number)
        frame.profile = self._profile
        frame.depth_units = self.depth_units_m
        with self._lock:
            self._sensor.set_metadata(rs.frame_metadata_value.frame_timestamp, stamp_us)
            self._sensor.set_metadata(rs.frame_metadata_value.frame_counter, int(frame_number))
            self._sensor.on_video_frame(frame)
        self.frames_injected += 1

    @property
    def handle(self) -> Any:
        """The pyrealsense2 device to give to ``RealSenseDepthDriver(device=...)``."""
        return self.device

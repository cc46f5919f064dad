"""Intel RealSense depth camera via pyrealsense2 -> depth ``Sample`` in metres.

``Sample.data`` is float32 (H, W) metres (z16 units x the sensor's depth scale; 0 = no depth),
optionally area-averaged down to ``output_hw``. ``t_device_s`` is the metadata ``frame_timestamp``
(device clock, us) x 1e-6, raw: the counter wraps at 2^32 us and the timebase unwraps it
(``clock.wrap_ticks``). Without metadata, a ``hardware_clock`` timestamp (ms) is used; with a host
domain the stream is arrival-clocked (``None``). ``seq`` is the frame number; gaps add to
``frames_lost``.

Two sources (platform.md section 3): a real camera through ``rs.pipeline`` (``device=None``), or
any pyrealsense2 device object (``rs.software_device`` in tests and the simulator, a playback
device) whose depth sensor the driver opens and starts into its own ``rs.frame_queue``.
pyrealsense2 is imported when the driver is built, so a missing package is reported only when
this driver is chosen.
"""

import logging
import time
from typing import Any, Optional, Tuple

import numpy as np

from drivers.base import DeviceClock, Driver, DriverError, MissingDependencyError
from drivers.sample import Sample

logger = logging.getLogger(__name__)

INSTALL_HINT = (
    "the realsense_depth driver needs pyrealsense2: pip install 'cosmo-edge[realsense]' "
    "(on aarch64/Jetson build librealsense with -DBUILD_PYTHON_BINDINGS=true)"
)
US_WRAP = 1 << 32


def import_pyrealsense2() -> Any:
    """Import pyrealsense2 or raise ``MissingDependencyError`` with the install hint."""
    try:
        import pyrealsense2 as rs
    except ImportError as exc:
        raise MissingDependencyError(f"{INSTALL_HINT} ({exc})") from exc
    return rs


def area_downsample(frame: np.ndarray, out_hw: Tuple[int, int]) -> np.ndarray:
    """Average non-overlapping blocks: (H, W) -> out_hw; H and W must be multiples of it."""
    height, width = frame.shape
    out_h, out_w = out_hw
    if height % out_h or width % out_w:
        raise ValueError(f"cannot area-average {height}x{width} to {out_h}x{out_w}: not an integer factor")
    blocks = frame.reshape(out_h, height // out_h, out_w, width // out_w)
    return blocks.mean(axis=(1, 3), dtype=np.float32)


class RealSenseDepthDriver(Driver):
    """z16 depth from one RealSense camera or a pyrealsense2 device object.

    Args:
        stream: stream name put on every ``Sample``.
        width, height, fps: the depth profile to stream (z16).
        serial_number: pick a camera by serial (pipeline mode only).
        output_hw: (height, width) to area-average each frame to, e.g. (60, 80); ``None`` keeps it.
        device: a pyrealsense2 device (e.g. ``rs.software_device``) to stream from instead of a
            camera found by the pipeline.
        queue_size: frames the driver's queue holds (device mode); older ones are dropped.
    """

    clock = DeviceClock(kind="device", tick_s=1e-6, wrap_ticks=US_WRAP)

    def __init__(
        self,
        stream: str = "depth",
        width: int = 640,
        height: int = 480,
        fps: int = 30,
        serial_number: Optional[str] = None,
        output_hw: Optional[Tuple[int, int]] = None,
        device: Optional[Any] = None,
        queue_size: int = 2,
    ) -> None:
        super().__init__(stream)
        self._rs = import_pyrealsense2()
        if output_hw is not None:
            output_hw = (int(output_hw[0]), int(output_hw[1]))
            if height % output_hw[0] or width % output_hw[1]:
                raise ValueError(f"output_hw {output_hw} must divide {height}x{width}")
        self.width, self.height, self.fps = int(width), int(height), int(fps)
        self.serial_number = serial_number
        self.output_hw = output_hw
        self.device = device
        self.queue_size = int(queue_size)
        self.depth_scale_m = 0.0
        self._pipe: Optional[Any] = None
        self._sensor: Optional[Any] = None
        self._queue: Optional[Any] = None
        self._last_number: Optional[int] = None
        for name in ("frames_lost", "restarts", "frames_no_metadata"):
            self._count(name, 0)

    def open(self) -> None:
        """Start streaming; ``DriverError`` lists the available profiles when the one asked for is missing."""
        self._last_number = None
        if self.device is not None:
            self._open_device(self.device)
        else:
            self._open_pipeline()
        logger.info(
            "depth %s streaming %dx%d@%d z16, depth scale %.6f m",
            self.stream,
            self.width,
            self.height,
            self.fps,
            self.depth_scale_m,
        )

    def _matching_profile(self, sensor: Any) -> Any:
        """The sensor's z16 depth profile with our size and rate."""
        rs = self._rs
        seen = []
        for profile in sensor.get_stream_profiles():
            if profile.stream_type() != rs.stream.depth or not profile.is_video_stream_profile():
                continue
            video = profile.as_video_stream_profile()
            seen.append(f"{video.width()}x{video.height()}@{profile.fps()} {profile.format()}")
            if (video.width(), video.height(), profile.fps(), profile.format()) == (
                self.width,
                self.height,
                self.fps,
                rs.format.z16,
            ):
                return profile
        raise DriverError(
            f"depth profile {self.width}x{self.height}@{self.fps} z16 not offered; "
            f"available: {', '.join(seen)}"
        )

    def _open_device(self, device: Any) -> None:
        rs = self._rs
        try:
            sensor = device.first_depth_sensor()
        except RuntimeError as exc:
            raise DriverError(f"device has no depth sensor: {exc}") from exc
        profile = self._matching_profile(sensor)
        self.depth_scale_m = float(sensor.get_depth_scale())
        self._disable_global_time(sensor)
        self._queue = rs.frame_queue(self.queue_size)
        sensor.open(profile)
        sensor.start(self._queue)
        self._sensor = sensor

    def _open_pipeline(self) -> None:
        rs = self._rs
        pipe, config = rs.pipeline(), rs.config()
        if self.serial_number:
            config.enable_device(self.serial_number)
        config.enable_stream(rs.stream.depth, self.width, self.height, rs.format.z16, self.fps)
        if not config.can_resolve(rs.pipeline_wrapper(pipe)):
            devices = rs.context().query_devices()
            offered = []
            for dev in devices:
                try:
                    offered.append(str(self._matching_profile(dev.first_depth_sensor())))
                except (DriverError, RuntimeError) as exc:
                    offered.append(str(exc))
            raise DriverError(
                f"no RealSense camera can stream depth {self.width}x{self.height}@{self.fps} z16 "
                f"({len(devices)} device(s) found){': ' + '; '.join(offered) if offered else ''}"
            )
        profile = pipe.start(config)
        sensor = profile.get_device().first_depth_sensor()
        self.depth_scale_m = float(sensor.get_depth_scale())
        self._disable_global_time(sensor)
        self._pipe = pipe

    def _disable_global_time(self, sensor: Any) -> None:
        """Keep timestamps on the device clock (we map it ourselves, platform.md 4.2)."""
        option = self._rs.option.global_time_enabled
        if sensor.supports(option) and not sensor.is_option_read_only(option):
            sensor.set_option(option, 0)

    def close(self) -> None:
        """Stop streaming; safe to call twice."""
        if self._pipe is not None:
            pipe, self._pipe = self._pipe, None
            pipe.stop()
        if self._sensor is not None:
            sensor, self._sensor = self._sensor, None
            sensor.stop()
            sensor.close()
        self._queue = None

    def read(self, timeout_s: float) -> Optional[Sample]:
        """Next depth frame, or ``None`` if none arrived within ``timeout_s`` seconds."""
        timeout_ms = max(0, int(timeout_s * 1000))
        if self._queue is not None:
            ok, frame = self._queue.try_wait_for_frame(timeout_ms)
            depth = frame.as_depth_frame() if ok else None
        elif self._pipe is not None:
            ok, frames = self._pipe.try_wait_for_frames(timeout_ms)
            depth = frames.get_depth_frame() if ok else None
        else:
            raise DriverError("realsense_depth: read() before open()")
        if not depth:
            return None
        t_host_ns = time.monotonic_ns()
        return self._to_sample(depth, t_host_ns)

    def _device_time_s(self, depth: Any) -> Optional[float]:
        rs = self._rs
        key = rs.frame_metadata_value.frame_timestamp
        if depth.supports_frame_metadata(key):
            return depth.get_frame_metadata(key) * 1e-6
        self._count("frames_no_metadata")
        if depth.get_frame_timestamp_domain() == rs.timestamp_domain.hardware_clock:
            return depth.get_timestamp() * 1e-3
        return None

    def _to_sample(self, depth: Any, t_host_ns: int) -> Optional[Sample]:
        """Copy the pixels out (held frames starve librealsense's pool) and build the sample."""
        raw = np.array(depth.get_data(), dtype=np.uint16, copy=True)
        if raw.shape != (self.height, self.width):
            self._count("frames_bad")
            logger.warning("depth frame is %s, expected %s: dropped", raw.shape, (self.height, self.width))
            return None
        number = int(depth.get_frame_number())
        t_device_s = self._device_time_s(depth)
        if self._last_number is not None:
            if number > self._last_number + 1:
                self._count("frames_lost", number - self._last_number - 1)
            elif number <= self._last_number:
                self._count("restarts")
        self._last_number = number
        metres = raw.astype(np.float32) * np.float32(self.depth_scale_m)
        if self.output_hw is not None:
            metres = area_downsample(metres, self.output_hw)
        self._count("frames_ok")
        return Sample(self.stream, t_device_s, t_host_ns, metres, number)

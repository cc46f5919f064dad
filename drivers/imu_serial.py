"""IMU over a serial port: WitMotion binary frames or MPU-6050 style text lines -> ``Sample``.

``Sample.data`` is float32 (6,): acceleration x, y, z in g, then angular rate x, y, z in deg/s.
Device time per protocol (platform.md 4.2):

- ``witmotion``: the 0x50 chip time in seconds when ``witmotion_use_time`` (enable 0x50 output
  on the sensor), else ``None`` (arrival-clocked).
- ``timestamped_text``: the line's ``t_us`` times 1e-6, raw: it wraps at 2^32 us and the timebase
  unwraps it (``clock.wrap_ticks``).
- ``mpu6050_text``: line index (bad lines included) times the nominal period. The index restarts
  at 0 after a reconnect, because auto-reset boards reboot when the port opens; the timebase
  sees the step back as a device restart.
"""

import collections
import logging
import time
from typing import Any, Callable, Deque, Dict, Optional

import numpy as np

from drivers import imu_text, imu_witmotion
from drivers.base import ARRIVAL_CLOCK, DeviceClock, Driver
from drivers.sample import Sample
from drivers.serial_port import SerialLink

logger = logging.getLogger(__name__)

PROTOCOLS = ("witmotion", imu_text.PROTOCOL_AG, imu_text.PROTOCOL_TIMESTAMPED)
INDEX_CLOCK_MAX_DRIFT_PPM = 50000.0


class ImuSerialDriver(Driver):
    """One IMU on one serial port.

    Args:
        port: serial device path (or pyserial URL).
        baud: line rate in bit/s (WitMotion: 9600 bare modules, 115200 enclosed; MPU6050 sketch: 38400).
        protocol: ``"witmotion"``, ``"mpu6050_text"`` or ``"timestamped_text"``.
        stream: stream name put on every ``Sample``.
        accel_fs_g: accelerometer full scale of text protocols (2, 4, 8 or 16 g).
        gyro_fs_dps: gyroscope full scale of text protocols (250, 500, 1000 or 2000 deg/s).
        nominal_rate_hz: nominal line rate of ``mpu6050_text`` (its index clock), about 10 Hz for the sketch.
        witmotion_emit_type: the cycle's last enabled WitMotion type (0x53 angles, 0x52 without them).
        witmotion_use_time: take device time from 0x50 chip-time frames.
        backoff_initial_s, backoff_max_s: reconnect backoff bounds in seconds.
        serial_factory: pyserial constructor override (tests).
    """

    def __init__(
        self,
        port: str,
        baud: int = 115200,
        protocol: str = "witmotion",
        stream: str = "imu",
        accel_fs_g: int = 2,
        gyro_fs_dps: int = 250,
        nominal_rate_hz: float = 10.0,
        witmotion_emit_type: int = imu_witmotion.TYPE_ANGLE,
        witmotion_use_time: bool = False,
        backoff_initial_s: float = 0.1,
        backoff_max_s: float = 5.0,
        serial_factory: Optional[Callable[..., Any]] = None,
    ) -> None:
        super().__init__(stream)
        if protocol not in PROTOCOLS:
            raise ValueError(f"unknown IMU protocol {protocol!r}; expected one of {', '.join(PROTOCOLS)}")
        if accel_fs_g not in imu_text.ACCEL_LSB_PER_G or gyro_fs_dps not in imu_text.GYRO_LSB_PER_DPS:
            raise ValueError(f"unsupported full scale: accel_fs_g={accel_fs_g}, gyro_fs_dps={gyro_fs_dps}")
        if nominal_rate_hz <= 0:
            raise ValueError("nominal_rate_hz must be positive")
        self.protocol = protocol
        self.accel_fs_g = int(accel_fs_g)
        self.gyro_fs_dps = int(gyro_fs_dps)
        self.nominal_period_s = 1.0 / float(nominal_rate_hz)
        link_args: Dict[str, Any] = {}
        if serial_factory is not None:
            link_args["serial_factory"] = serial_factory
        self._link = SerialLink(
            port, baud, backoff_initial_s, backoff_max_s, on_connect=self._on_connect, **link_args
        )
        self._wit = imu_witmotion.WitMotionParser()
        self._assembler = imu_witmotion.WitMotionAssembler(witmotion_emit_type, witmotion_use_time)
        self._text = imu_text.TextLineParser(protocol) if protocol != "witmotion" else None
        self._pending: Deque[Sample] = collections.deque()
        self._seq = 0
        self.clock = self._make_clock(witmotion_use_time)

    def _make_clock(self, witmotion_use_time: bool) -> DeviceClock:
        """Describe this stream's device time for the timebase."""
        if self.protocol == imu_text.PROTOCOL_TIMESTAMPED:
            return DeviceClock(kind="device", tick_s=1e-6, wrap_ticks=imu_text.U32_MODULUS)
        if self.protocol == imu_text.PROTOCOL_AG:
            return DeviceClock(
                kind="index", tick_s=self.nominal_period_s, max_drift_ppm=INDEX_CLOCK_MAX_DRIFT_PPM
            )
        if witmotion_use_time:
            return DeviceClock(kind="device", tick_s=0.001)
        return ARRIVAL_CLOCK

    @property
    def counters(self) -> Dict[str, int]:
        """frames_ok, frames_bad, bytes_skipped, reconnects plus protocol-specific counters."""
        counts = {
            "reconnects": self._link.reconnects,
            "disconnects": self._link.disconnects,
            "open_failures": self._link.open_failures,
            "samples": self._seq,
        }
        if self._text is not None:
            parser = self._text
            counts.update(lines_other=parser.lines_other)
        else:
            parser = self._wit  # type: ignore[assignment]
            counts.update(
                cycles_incomplete=self._assembler.cycles_incomplete,
                time_bad=self._assembler.time_bad,
                frames_other=self._assembler.frames_other,
            )
        counts.update(
            frames_ok=parser.frames_ok, frames_bad=parser.frames_bad, bytes_skipped=parser.bytes_skipped
        )
        return counts

    def _on_connect(self, reopened: bool) -> None:
        """Drop half-parsed bytes on every (re)open; for text streams the next line may be a cut one."""
        self._wit.reset()
        self._assembler.reset()
        if self._text is not None:
            self._text.resync()
            if reopened:
                self._text.line_index = 0

    def open(self) -> None:
        """Open the port (``DriverError`` if it cannot be opened now)."""
        self._link.open()
        logger.info(
            "IMU %s open on %s (%s, %d baud)", self.stream, self._link.port, self.protocol, self._link.baud
        )

    def close(self) -> None:
        """Close the port."""
        self._link.close()

    def read(self, timeout_s: float) -> Optional[Sample]:
        """Next IMU sample, or ``None`` if none completed within ``timeout_s`` seconds."""
        if self._pending:
            return self._pending.popleft()
        deadline_s = time.monotonic() + float(timeout_s)
        while True:
            data, t_ns = self._link.read(max(0.0, deadline_s - time.monotonic()))
            if not data:
                return None
            self._parse(data, t_ns)
            if self._pending:
                return self._pending.popleft()
            if time.monotonic() >= deadline_s:
                return None

    def _parse(self, data: bytes, t_ns: int) -> None:
        """Decode one chunk into pending samples stamped with the chunk's arrival time."""
        if self._text is None:
            for frame in self._wit.feed(data):
                reading = self._assembler.add(frame)
                if reading is not None:
                    self._emit(reading.values, reading.t_device_s, t_ns)
            return
        for line in self._text.feed(data):
            values = imu_text.counts_to_units(line.counts, self.accel_fs_g, self.gyro_fs_dps)
            if line.t_us is not None:
                t_device_s: Optional[float] = line.t_us * 1e-6
            else:
                t_device_s = line.line_index * self.nominal_period_s
            self._emit(values, t_device_s, t_ns)

    def _emit(self, values: np.ndarray, t_device_s: Optional[float], t_ns: int) -> None:
        self._pending.append(Sample(self.stream, t_device_s, t_ns, values, self._seq))
        self._seq += 1

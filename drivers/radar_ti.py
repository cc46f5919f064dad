"""TI mmWave radar (IWR6843 / IWR1843 / IWR1443 out-of-box demo) -> point-cloud ``Sample``.

Two serial ports: the CLI port receives the chirp ``.cfg`` (``radar_ti_cli``), the data port
streams binary packets (``radar_ti_parser``). ``Sample.data`` is float32 (n, 4): x, y, z in metres
(radar frame: x right, y boresight, z up) and radial Doppler in m/s; n may be 0.

Time (platform.md 2.6): ``t_device_s`` = (frameNumber - first frameNumber) x frame period; a
frame number that goes down means the radar restarted (the count starts again, the timebase
resets). ``t_host_ns`` is the arrival of the packet's last byte minus its time on the wire
(``totalPacketLen`` x 10 bits / data baud). ``seq`` is the frame number. When the data port comes
back after a disconnect the radar has usually power-cycled and lost its config, so the driver
sends the ``.cfg`` again before reading.
"""

import collections
import logging
import time
from typing import Any, Callable, Deque, Dict, Optional

import serial

from drivers.base import DeviceClock, Driver, DriverError
from drivers.radar_ti_cli import BITS_PER_BYTE, RadarCfg, RadarCli, RadarConfigError, load_cfg
from drivers.radar_ti_parser import RadarFrame, TiFrameParser
from drivers.sample import Sample
from drivers.serial_port import SerialLink

logger = logging.getLogger(__name__)

CLI_READ_TIMEOUT_S = 0.05


class TiRadarDriver(Driver):
    """One radar: configure over the CLI port, then read frames from the data port.

    Args:
        data_port: data port path (``.../if01`` or ``/dev/ttyUSB1`` / ``/dev/ttyACM1``).
        cli_port: CLI port path; required when ``configure``.
        cfg_path: chirp ``.cfg``; ``None`` = the packaged ``radar_cfg/iwr6843.cfg``.
        configure: send the ``.cfg`` on open (False when another program configured the radar).
        stream: stream name put on every ``Sample``.
        cli_baud, data_baud: line rates in bit/s (115200 and 921600 on the demo).
        frame_period_s: needed when ``configure`` is False; otherwise taken from ``frameCfg``.
        max_points: point budget used to check that the largest frame fits in the frame period;
            frames above it are counted in ``frames_over_budget``.
        line_timeout_s, start_timeout_s: CLI reply timeouts (per line, for ``sensorStart``).
        backoff_initial_s, backoff_max_s: reconnect backoff bounds in seconds.
        serial_factory: pyserial constructor override (tests).
    """

    def __init__(
        self,
        data_port: str,
        cli_port: Optional[str] = None,
        cfg_path: Optional[str] = None,
        configure: bool = True,
        stream: str = "radar",
        cli_baud: int = 115200,
        data_baud: int = 921600,
        frame_period_s: Optional[float] = None,
        max_points: int = 150,
        line_timeout_s: float = 1.0,
        start_timeout_s: float = 5.0,
        backoff_initial_s: float = 0.2,
        backoff_max_s: float = 5.0,
        serial_factory: Callable[..., Any] = serial.serial_for_url,
    ) -> None:
        super().__init__(stream)
        self.cfg: Optional[RadarCfg] = None
        if configure:
            if cli_port is None:
                raise DriverError("radar_ti: cli_port is required when configure is true")
            self.cfg = load_cfg(cfg_path)
            self.cfg.check_fits(max_points, data_baud)
            if frame_period_s is not None and abs(frame_period_s - self.cfg.frame_period_s) > 1e-9:
                raise DriverError(
                    f"radar_ti: frame_period_s={frame_period_s} disagrees with frameCfg "
                    f"({self.cfg.frame_period_s} s); leave it unset"
                )
            frame_period_s = self.cfg.frame_period_s
        elif frame_period_s is None or frame_period_s <= 0:
            raise DriverError("radar_ti: frame_period_s is required when configure is false")
        self.frame_period_s = float(frame_period_s)
        self.cli_port, self.cli_baud, self.data_baud = cli_port, int(cli_baud), int(data_baud)
        self.max_points = int(max_points)
        self._timeouts = (line_timeout_s, start_timeout_s)
        self._factory = serial_factory
        self._cli_serial: Optional[Any] = None
        self.version_info: Dict[str, str] = {}
        doppler_res = self.cfg.doppler_resolution_mps if self.cfg is not None else 0.0
        self._parser = TiFrameParser(doppler_resolution_mps=doppler_res)
        self._link = SerialLink(
            data_port, data_baud, backoff_initial_s, backoff_max_s, self._on_connect, serial_factory
        )
        self._pending: Deque[Sample] = collections.deque()
        self._first_frame: Optional[int] = None
        self._last_frame: Optional[int] = None
        self.last_frame: Optional[RadarFrame] = None
        self.clock = DeviceClock(kind="device", tick_s=self.frame_period_s)
        self._extra = {"frames_lost": 0, "restarts": 0, "frames_repeated": 0, "frames_over_budget": 0}

    @property
    def counters(self) -> Dict[str, int]:
        """frames_ok, frames_bad, bytes_skipped, reconnects, frames_lost, frames_cut, restarts, ..."""
        p = self._parser
        counts = dict(self._extra)
        counts.update(
            frames_ok=p.frames_ok,
            frames_bad=p.frames_bad,
            bytes_skipped=p.bytes_skipped,
            frames_cut=p.frames_cut,
            tlvs_unknown=p.tlvs_unknown,
            points_invalid=p.points_invalid,
            reconnects=self._link.reconnects,
            disconnects=self._link.disconnects,
            open_failures=self._link.open_failures,
        )
        return counts

    def _on_connect(self, reopened: bool) -> None:
        """After every (re)open of the data port: reset parsing state and (re)send the config."""
        self._parser.reset()
        self._first_frame = self._last_frame = None
        if self.cfg is not None:
            self._configure(self.cfg)

    def _configure(self, cfg: RadarCfg) -> None:
        """Open the CLI port, send the config, keep the port open for ``sensorStop`` at close."""
        self._close_cli()
        try:
            self._cli_serial = self._factory(
                self.cli_port, baudrate=self.cli_baud, timeout=CLI_READ_TIMEOUT_S
            )
        except (serial.SerialException, OSError) as exc:
            raise RadarConfigError(f"cannot open radar CLI port {self.cli_port}: {exc}") from exc
        cli = RadarCli(self._cli_serial, *self._timeouts)
        try:
            cli.configure(cfg, before_start=self._link.reset_input)
        except (serial.SerialException, OSError) as exc:
            self._close_cli()
            raise RadarConfigError(f"radar CLI port {self.cli_port} failed: {exc}") from exc
        except RadarConfigError:
            self._close_cli()
            raise
        self.version_info = cli.version_info

    def _close_cli(self) -> None:
        port, self._cli_serial = self._cli_serial, None
        if port is not None:
            try:
                port.close()
            except (serial.SerialException, OSError) as exc:
                logger.debug("closing radar CLI port: %s", exc)

    def open(self) -> None:
        """Open the data port and configure the radar (``DriverError`` / ``RadarConfigError`` on failure)."""
        self._link.open()
        logger.info(
            "radar %s open on %s (frame period %.1f ms)",
            self.stream,
            self._link.port,
            self.frame_period_s * 1e3,
        )

    def close(self) -> None:
        """Stop the sensor (when this driver configured it) and close both ports."""
        if self._cli_serial is not None:
            try:
                RadarCli(self._cli_serial, *self._timeouts).stop()
            except (serial.SerialException, OSError) as exc:
                logger.warning("radar sensorStop failed: %s", exc)
        self._close_cli()
        self._link.close()

    def read(self, timeout_s: float) -> Optional[Sample]:
        """Next point-cloud frame, or ``None`` if none completed within ``timeout_s`` seconds."""
        if self._pending:
            return self._pending.popleft()
        deadline_s = time.monotonic() + float(timeout_s)
        while True:
            data, t_ns = self._link.read(max(0.0, deadline_s - time.monotonic()))
            # An empty read may release a packet held on a magic-word prefix (radar_ti_parser).
            frames = self._parser.feed(data, t_ns) if data else self._parser.flush(t_ns)
            for frame in frames:
                self._accept(frame)
            if self._pending:
                return self._pending.popleft()
            if not data or time.monotonic() >= deadline_s:
                return None

    def _accept(self, frame: RadarFrame) -> None:
        """Frame-number bookkeeping, then queue the frame as a ``Sample``."""
        number = frame.frame_number
        if self._last_frame is not None and number == self._last_frame:
            self._extra["frames_repeated"] += 1
            return
        if self._first_frame is None or (self._last_frame is not None and number < self._last_frame):
            if self._first_frame is not None:
                self._extra["restarts"] += 1
                logger.warning(
                    "radar frame number fell from %d to %d: sensor restarted", self._last_frame, number
                )
            self._first_frame = number
        elif number - self._last_frame > 1:  # type: ignore[operator]
            self._extra["frames_lost"] += number - self._last_frame - 1  # type: ignore[operator]
        self._last_frame = number
        if len(frame.points) > self.max_points:
            self._extra["frames_over_budget"] += 1
        wire_ns = int(frame.packet_bytes * BITS_PER_BYTE * 1e9 / self.data_baud)
        t_device_s = (number - self._first_frame) * self.frame_period_s
        self.last_frame = frame
        self._pending.append(
            Sample(self.stream, t_device_s, frame.t_last_byte_ns - wire_ns, frame.points, number)
        )

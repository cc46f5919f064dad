"""TI mmWave out-of-box demo CLI: parse a chirp ``.cfg`` and send it line by line (platform.md 2.1).

The CLI port (115200 8N1) echoes each command and answers ``Done`` (then the ``mmwDemo:/>``
prompt), or ``Error ...`` / ``'<cmd>' is not recognized as a CLI command``. ``RadarCli.configure``
sends ``sensorStop``, ``flushCfg``, every ``.cfg`` line (blank and ``%`` lines skipped), empties the
data port through a callback, then ``sensorStart``; any failure raises ``RadarConfigError`` naming
the ``.cfg`` line. ``RadarCfg`` keeps what the driver needs: the frame period (``frameCfg``), the
TLVs sent (``guiMonitor``) and the largest packet, which must fit in the frame period at the data
port's baud rate.
"""

import logging
import math
import pathlib
import re
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Tuple

from drivers.base import DriverError

logger = logging.getLogger(__name__)

SPEED_OF_LIGHT_MPS = 299_792_458.0
PROMPT = "mmwDemo:/>"
CONTROL_COMMANDS = ("sensorStop", "flushCfg", "sensorStart")
DEFAULT_CFG = pathlib.Path(__file__).with_name("radar_cfg") / "iwr6843.cfg"
# Bits on the wire per byte at 8N1.
BITS_PER_BYTE = 10
_NOT_RECOGNIZED = "is not recognized as a CLI command"


class RadarConfigError(DriverError):
    """The radar refused a command, did not answer, or the ``.cfg`` is unusable."""


def _next_pow2(value: int) -> int:
    return 1 << max(0, int(value) - 1).bit_length()


@dataclass
class RadarCfg:
    """The parts of a ``.cfg`` the driver uses, plus every command line to send.

    Attributes:
        commands: ``.cfg`` lines to send, without ``sensorStop``/``flushCfg``/``sensorStart``.
        frame_period_s: ``frameCfg`` 5th argument, in seconds.
        gui_monitor: detectedObjects, logMagRange, noiseProfile, rangeAzimuthHeatMap,
            rangeDopplerHeatMap, statsInfo flags.
        num_range_bins, num_doppler_bins, num_virtual_antennas: FFT sizes behind the TLV sizes.
        doppler_resolution_mps: m/s per Doppler bin (legacy fixed-point points need it).
    """

    commands: List[str]
    frame_period_s: float
    gui_monitor: Tuple[int, int, int, int, int, int]
    num_range_bins: int
    num_doppler_bins: int
    num_virtual_antennas: int
    doppler_resolution_mps: float

    def max_packet_bytes(self, max_points: int) -> int:
        """Largest SDK 3.x packet this config produces with ``max_points`` detected points."""
        objects, range_profile, noise_profile, azimuth_map, doppler_map, stats = self.gui_monitor
        size = 40
        if objects:
            size += 8 + 16 * max_points
            if objects == 1:
                size += 8 + 4 * max_points  # side info (snr, noise) per point
        size += (8 + 2 * self.num_range_bins) * (int(bool(range_profile)) + int(bool(noise_profile)))
        if azimuth_map:
            size += 8 + 4 * self.num_range_bins * self.num_virtual_antennas
        if doppler_map:
            size += 8 + 2 * self.num_range_bins * self.num_doppler_bins
        if stats:
            size += 8 + 24 + 8 + 28  # stats, and the temperature TLV some builds append
        return size + (-size) % 32

    def check_fits(self, max_points: int, data_baud: int) -> float:
        """Return the largest packet's wire time in seconds; raise if it exceeds the frame period."""
        wire_s = self.max_packet_bytes(max_points) * BITS_PER_BYTE / float(data_baud)
        if wire_s > self.frame_period_s:
            raise RadarConfigError(
                f"largest frame ({self.max_packet_bytes(max_points)} bytes with {max_points} points) "
                f"needs {wire_s * 1e3:.1f} ms at {data_baud} baud, more than the "
                f"{self.frame_period_s * 1e3:.1f} ms frame period: turn off TLVs in guiMonitor or "
                "lengthen frameCfg"
            )
        return wire_s


_NEEDED = ("frameCfg", "guiMonitor", "profileCfg", "channelCfg")


class _CfgLine:
    """One ``.cfg`` command with its 1-based line number, for error messages."""

    def __init__(self, source: str, number: int, text: str) -> None:
        self.where = f"{source}:{number}"
        self.text = text
        try:
            self.values = [float(tok) for tok in text.split()[1:]]
        except ValueError as exc:
            raise self.error(f"cannot parse: {exc}") from exc
        if not all(math.isfinite(v) for v in self.values):
            raise self.error("arguments must be finite numbers (nan and inf are not)")

    def error(self, problem: str) -> RadarConfigError:
        """``RadarConfigError`` naming this file, line and command."""
        return RadarConfigError(f"{self.where}: {self.text!r}: {problem}")

    def require(self, ok: bool, problem: str) -> None:
        """Raise ``error(problem)`` unless ``ok``."""
        if not ok:
            raise self.error(problem)


def parse_cfg(text: str, source: str = "<cfg>") -> RadarCfg:
    """Parse ``.cfg`` text; raise ``RadarConfigError`` naming the file (and the line) when unusable.

    Every argument must be a finite number, and the values the driver derives from (frame period,
    loops, chirp time, carrier frequency) must be positive, so no arithmetic below can fail.
    """
    commands: List[str] = []
    found: Dict[str, _CfgLine] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("%"):
            continue
        name = line.split()[0]
        parsed = _CfgLine(source, number, line)
        if name in _NEEDED:
            found[name] = parsed
        if name not in CONTROL_COMMANDS:
            commands.append(line)
    missing = [n for n in _NEEDED if n not in found]
    if missing:
        raise RadarConfigError(f"{source}: missing {', '.join(missing)}")
    frame_line, gui_line, profile_line, channel_line = (found[n] for n in _NEEDED)
    frame, gui, profile, channel = (c.values for c in (frame_line, gui_line, profile_line, channel_line))
    for cfg_line, low in ((frame_line, 5), (profile_line, 11), (channel_line, 2)):
        cfg_line.require(len(cfg_line.values) >= low, f"needs at least {low} arguments")
    gui_line.require(len(gui) in (6, 7), "needs 6 or 7 arguments")
    flags = tuple(int(v) for v in gui[-6:])
    chirps_per_loop = int(frame[1] - frame[0] + 1)
    num_loops = int(frame[2])
    frame_line.require(num_loops >= 1, f"number of loops {frame[2]:g} must be at least 1")
    frame_line.require(frame[4] > 0, f"frame periodicity {frame[4]:g} ms must be positive")
    num_tx = bin(int(channel[1])).count("1")
    num_rx = bin(int(channel[0])).count("1")
    start_ghz, idle_us, ramp_end_us, slope_mhz_per_us = profile[1], profile[2], profile[4], profile[7]
    centre_hz = start_ghz * 1e9 + slope_mhz_per_us * 1e6 * ramp_end_us / 2.0
    chirp_s = (idle_us + ramp_end_us) * 1e-6
    profile_line.require(chirp_s > 0, f"chirp time (idle + ramp end) {chirp_s * 1e6:g} us must be positive")
    profile_line.require(centre_hz > 0, f"chirp centre frequency {centre_hz:g} Hz must be positive")
    doppler_res = SPEED_OF_LIGHT_MPS / centre_hz / (2.0 * num_loops * max(1, chirps_per_loop) * chirp_s)
    profile_line.require(math.isfinite(doppler_res), "the Doppler resolution it gives is not finite")
    return RadarCfg(
        commands=commands,
        frame_period_s=frame[4] / 1000.0,
        gui_monitor=flags,  # type: ignore[arg-type]
        num_range_bins=_next_pow2(int(profile[9])),
        num_doppler_bins=_next_pow2(num_loops),
        num_virtual_antennas=num_tx * num_rx,
        doppler_resolution_mps=doppler_res,
    )


def load_cfg(path: Optional[str] = None) -> RadarCfg:
    """Read and parse a ``.cfg`` file (the packaged IWR6843 profile when ``path`` is None)."""
    cfg_path = pathlib.Path(path) if path else DEFAULT_CFG
    return parse_cfg(cfg_path.read_text(encoding="ascii"), str(cfg_path))


class RadarCli:
    """Talks to the demo's CLI over an open pyserial-like port (``read``, ``write``, ``reset_input_buffer``).

    Args:
        port: the open CLI port; its read timeout should be short (tens of ms).
        line_timeout_s: wait for ``Done`` per command.
        start_timeout_s: wait for ``Done`` after ``sensorStart``.
    """

    def __init__(self, port: Any, line_timeout_s: float = 1.0, start_timeout_s: float = 5.0) -> None:
        self.port = port
        self.line_timeout_s = line_timeout_s
        self.start_timeout_s = start_timeout_s
        self._pending = ""
        self.version_info: Dict[str, str] = {}

    def _read_lines(self) -> List[str]:
        """Read once (up to the port's timeout); return the complete reply lines, prompt stripped."""
        chunk = self.port.read(max(1, getattr(self.port, "in_waiting", 0) or 1))
        if chunk:
            self._pending += chunk.decode("ascii", errors="replace")
        lines = []
        while "\n" in self._pending:
            line, self._pending = self._pending.split("\n", 1)
            line = line.replace(PROMPT, "").strip()
            if line:
                lines.append(line)
        return lines

    def drain(self, quiet_s: float = 0.2) -> None:
        """Send a newline and discard whatever arrives for ``quiet_s`` (power-up noise, old prompts)."""
        self.port.write(b"\n")
        deadline_s = time.monotonic() + quiet_s
        while time.monotonic() < deadline_s:
            self.port.read(max(1, getattr(self.port, "in_waiting", 0) or 1))
        self.port.reset_input_buffer()
        self._pending = ""

    def command(self, line: str, timeout_s: Optional[float] = None) -> List[str]:
        """Send one command; return its reply lines once ``Done`` arrives.

        Raises:
            RadarConfigError: ``Error`` or "not recognized" reply, or no ``Done`` in time.
        """
        timeout_s = self.line_timeout_s if timeout_s is None else timeout_s
        name = line.split()[0] if line.split() else line
        self.port.write(line.encode("ascii") + b"\r\n")
        deadline_s = time.monotonic() + timeout_s
        reply: List[str] = []
        while time.monotonic() < deadline_s:
            for text in self._read_lines():
                if text == line.strip():
                    continue  # the echo
                reply.append(text)
                if text == "Done" or (name == "sensorStop" and text.startswith("Ignored")):
                    return reply
                if text.startswith("Error") or _NOT_RECOGNIZED in text or "Error" in text.split():
                    raise RadarConfigError(f"radar rejected {line!r}: {text}")
        raise RadarConfigError(
            f"no 'Done' from the radar within {timeout_s:.1f} s after {line!r} (got {reply})"
        )

    def query_version(self) -> Dict[str, str]:
        """Send ``version``; return the reply's ``key : value`` fields (Platform, SDK version, ...)."""
        info: Dict[str, str] = {}
        for text in self.command("version"):
            key, sep, value = text.partition(":")
            if sep:
                info[key.strip()] = value.strip()
        self.version_info = info
        logger.info("radar version: %s", ", ".join(f"{k}={v}" for k, v in info.items()) or "no fields")
        return info

    def configure(self, cfg: RadarCfg, before_start: Optional[Callable[[], None]] = None) -> None:
        """Full start-up sequence (platform.md 2.1 steps 1-3)."""
        self.drain()
        self.query_version()
        self.command("sensorStop")
        self.command("flushCfg")
        for line in cfg.commands:
            self.command(line)
        if before_start is not None:
            before_start()
        self.command("sensorStart", self.start_timeout_s)
        logger.info(
            "radar configured: %d lines, frame period %.1f ms", len(cfg.commands), cfg.frame_period_s * 1e3
        )

    def stop(self) -> None:
        """Send ``sensorStop`` (on shutdown); errors are logged, not raised."""
        try:
            self.command("sensorStop")
        except RadarConfigError as exc:
            logger.warning("sensorStop on shutdown failed: %s", exc)


def parse_sdk_version(info: Dict[str, str]) -> Optional[Tuple[int, ...]]:
    """``"03.05.00.04"`` from the version reply as a tuple, or ``None`` when absent."""
    for key, value in info.items():
        if "SDK" in key:
            numbers = re.findall(r"\d+", value)
            if numbers:
                return tuple(int(n) for n in numbers)
    return None

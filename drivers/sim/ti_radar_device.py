"""A stand-in for the TI out-of-box demo's two ports: a CLI that answers and a data port.

The CLI side echoes each command and replies like the demo (``Done`` then the ``mmwDemo:/>``
prompt; ``'<cmd>' is not recognized as a CLI command`` for unknown commands; configurable
``Error`` replies for tests). ``sensorStart`` starts streaming with frame numbers from 1 at the
``frameCfg`` period; ``sensorStop`` stops it. Frames themselves are produced by the simulator
(``send_frame``), which asks ``streaming`` and ``frame_period_s``.
"""

import logging
import select
import threading
from typing import Dict, List, Optional

from drivers.radar_ti_cli import PROMPT
from drivers.sim.pty_device import PtyDevice

logger = logging.getLogger(__name__)

KNOWN_COMMANDS = frozenset(
    """version sensorStop sensorStart flushCfg dfeDataOutputMode channelCfg adcCfg adcbufCfg profileCfg
    chirpCfg frameCfg advFrameCfg subFrameCfg lowPower guiMonitor cfarCfg multiObjBeamForming
    clutterRemoval calibDcRangeSig extendedMaxVelocity bpmCfg lvdsStreamCfg compRangeBiasAndRxChanPhase
    measureRangeBiasAndRxChanPhase CQRxSatMonitor CQSigImgMonitor analogMonitor aoaFovCfg cfarFovCfg
    calibData""".split()
)
VERSION_LINES = (
    "Platform                : {platform}",
    "mmWave SDK Version      : {sdk}",
    "Device Info             : IWR68XX non-secure ES 02.00",
    "RF F/W Version          : 06.03.02.06.20.08.11",
)


class FakeTiRadar:
    """CLI responder thread plus streaming state for one simulated radar.

    Args:
        cli: the CLI pty device.
        replies: command name -> reply line to send instead of ``Done`` (e.g. ``"Error -1"``).
        platform, sdk: what ``version`` reports.
    """

    def __init__(
        self,
        cli: PtyDevice,
        replies: Optional[Dict[str, str]] = None,
        platform: str = "xWR68xx",
        sdk: str = "03.05.00.04",
    ) -> None:
        self.cli = cli
        self.replies = dict(replies or {})
        self.platform, self.sdk = platform, sdk
        self.commands: List[str] = []
        self.frame_period_s: Optional[float] = None
        self.streaming = False
        self.starts = 0
        self._buffer = b""
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None

    def start(self) -> None:
        """Serve the CLI in a background thread."""
        self._stop.clear()
        self._thread = threading.Thread(target=self._serve, name="fake-ti-cli", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop serving."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
            self._thread = None

    def power_cycle(self) -> None:
        """Forget the configuration and stop streaming (as after a USB replug)."""
        self.streaming = False
        self.frame_period_s = None
        self._buffer = b""

    def _serve(self) -> None:
        while not self._stop.is_set():
            fd = self.cli.fileno()
            if fd is None:
                self._stop.wait(0.05)
                continue
            try:
                ready, _, _ = select.select([fd], [], [], 0.05)
            except (OSError, ValueError) as exc:  # the pty was unplugged under us
                logger.debug("radar CLI select failed: %s", exc)
                continue
            if ready:
                self.handle_bytes(self.cli.read())

    def handle_bytes(self, data: bytes) -> None:
        """Process what the driver wrote; answer every complete line."""
        self._buffer += data
        while b"\n" in self._buffer:
            raw, self._buffer = self._buffer.split(b"\n", 1)
            line = raw.decode("ascii", errors="replace").strip()
            self.cli.write(self._reply(line).encode("ascii"))

    def _reply(self, line: str) -> str:
        if not line:
            return "\r\n" + PROMPT
        self.commands.append(line)
        name = line.split()[0]
        body: List[str] = []
        if name not in KNOWN_COMMANDS:
            return f"{line}\r\n'{name}' is not recognized as a CLI command\r\n{PROMPT}"
        if name in self.replies:
            return f"{line}\r\n{self.replies[name]}\r\n{PROMPT}"
        if name == "version":
            body = [text.format(platform=self.platform, sdk=self.sdk) for text in VERSION_LINES]
        elif name == "sensorStop":
            if not self.streaming:
                body = ["Ignored: Sensor is already stopped"]
            self.streaming = False
        elif name == "frameCfg":
            self.frame_period_s = float(line.split()[5]) / 1000.0
        elif name == "sensorStart":
            if self.frame_period_s is None:
                return f"{line}\r\nError -1\r\n{PROMPT}"
            self.streaming = True
            self.starts += 1
        return "\r\n".join([line] + body + ["Done", PROMPT])

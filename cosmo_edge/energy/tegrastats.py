"""Power rails from ``tegrastats --interval <ms>`` output (platform.md section 8).

tegrastats prints one line per interval; each rail appears as ``NAME current/average`` in mW,
unitless on JetPack 4 (``VDD_IN 1649/1649``) and with units on JetPack 5+ (``VDD_IN 5139mW/5139mW``).
CPU load is ``CPU [load%@MHz,off,...]`` per core. ``parse_tegrastats_line`` reads both forms;
``TegrastatsMeter`` runs tegrastats as a child process, stamps each line on arrival with the host
monotonic clock and reports the *current* value of each rail in watts (the average column is a
running mean since tegrastats started, which is not what an integral needs).

The total is ``VDD_IN`` (``POM_5V_IN`` on the Nano); otherwise a derived ``total`` sums the rails.
"""

import collections
import logging
import re
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass, field
from typing import Deque, Dict, List, Optional, Tuple

from cosmo_edge.energy.base import (
    POWER,
    ChannelInfo,
    EnergyMeter,
    MeterError,
    MeterOptions,
    MeterSample,
    MeterUnavailable,
)

logger = logging.getLogger(__name__)

TOTAL_RAIL_NAMES = ("VDD_IN", "POM_5V_IN")
DERIVED_TOTAL = "total"
# NAME current/average, both in mW, optionally suffixed "mW"; "RAM 2183/7852MB" does not match.
_RAIL = re.compile(r"(?<!\S)([A-Za-z][A-Za-z0-9_]*) (\d+)(mW)?/(\d+)(mW)?(?!\S)")
_CPU = re.compile(r"(?<!\S)CPU \[([^\]]*)\]")
_CORE = re.compile(r"^(\d+(?:\.\d+)?)%(?:@(\d+))?$")
_STOP_WAIT_S = 2.0


@dataclass
class TegrastatsLine:
    """One parsed line: rails in mW as (current, average), per-core CPU (load %, MHz) or None if off."""

    rails_mw: Dict[str, Tuple[int, int]] = field(default_factory=dict)
    cpu: List[Optional[Tuple[float, Optional[int]]]] = field(default_factory=list)
    with_units: bool = False


def parse_tegrastats_line(line: str) -> TegrastatsLine:
    """Parse the power rails and CPU cores of one tegrastats line (JetPack 4 and 5+ forms)."""
    parsed = TegrastatsLine()
    for match in _RAIL.finditer(line):
        name, current, unit_a, average, unit_b = match.groups()
        parsed.rails_mw[name] = (int(current), int(average))
        parsed.with_units = parsed.with_units or bool(unit_a or unit_b)
    cpu = _CPU.search(line)
    if cpu:
        for entry in cpu.group(1).split(","):
            core = _CORE.match(entry.strip())
            if core is None:
                parsed.cpu.append(None)  # "off" (core parked) or a form we do not know
            else:
                mhz = int(core.group(2)) if core.group(2) else None
                parsed.cpu.append((float(core.group(1)), mhz))
    return parsed


def line_buffered(argv: List[str]) -> List[str]:
    """Prefix ``stdbuf -oL`` where it exists, so a stdio-buffered child flushes each line into the pipe.

    Lines are timestamped on arrival; a child that buffers 4 KiB before writing would deliver a dozen
    lines at once (the gap report then shows it).
    """
    stdbuf = shutil.which("stdbuf")
    return [stdbuf, "-oL"] + argv if stdbuf else argv


class TegrastatsMeter(EnergyMeter):
    """Streams tegrastats in a reader thread; ``poll()`` drains the lines parsed since the last call."""

    name = "tegrastats"
    quantity = POWER

    def __init__(self, cmd: str, interval_ms: int) -> None:
        super().__init__()
        self.cmd = cmd
        self.interval_ms = int(interval_ms)
        self.rails: List[str] = []
        self.lines_bad = 0
        self.last_cpu: List[Optional[Tuple[float, Optional[int]]]] = []
        self.last_unparsed = ""
        self._queue: Deque[MeterSample] = collections.deque()
        self._lock = threading.Lock()
        self._first = threading.Event()
        try:
            self._proc = subprocess.Popen(
                line_buffered([cmd, "--interval", str(self.interval_ms)]),
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                text=True,
                bufsize=1,
            )
        except OSError as exc:
            raise MeterUnavailable(f"cannot start {cmd}: {exc}") from exc
        self._thread = threading.Thread(target=self._read_lines, name="tegrastats-reader", daemon=True)
        self._thread.start()

    @classmethod
    def probe(cls, options: MeterOptions) -> "TegrastatsMeter":
        """Start tegrastats and wait for its first line with power rails."""
        cmd = shutil.which(options.tegrastats_cmd)
        if cmd is None:
            raise MeterUnavailable(f"{options.tegrastats_cmd} not found on PATH")
        meter = cls(cmd, options.tegrastats_interval_ms)
        if not meter._first.wait(options.probe_timeout_s + options.tegrastats_interval_ms / 1e3):
            meter.close()
            last = meter.last_unparsed or "nothing"
            raise MeterUnavailable(
                f"{cmd} printed no power rails within {options.probe_timeout_s} s (last: {last!r})"
            )
        logger.info("tegrastats every %d ms: rails %s", meter.interval_ms, ", ".join(meter.rails))
        return meter

    def _read_lines(self) -> None:
        """Reader thread: parse each line on arrival and queue a sample."""
        assert self._proc.stdout is not None
        for line in self._proc.stdout:
            t_ns = time.monotonic_ns()
            parsed = parse_tegrastats_line(line)
            if not parsed.rails_mw:
                self.last_unparsed = line.strip()[:200]
                continue
            if not self.rails:
                self._set_rails(list(parsed.rails_mw))
            if any(rail not in parsed.rails_mw for rail in self.rails):
                self.lines_bad += 1
                continue
            values = {rail: parsed.rails_mw[rail][0] / 1e3 for rail in self.rails}
            if self.total_channel == DERIVED_TOTAL:
                values[DERIVED_TOTAL] = sum(values.values())
            with self._lock:
                self._queue.append(MeterSample(t_ns, values))
                self.last_cpu = parsed.cpu
            self._first.set()

    def _set_rails(self, rails: List[str]) -> None:
        self.rails = rails
        total = next((n for n in TOTAL_RAIL_NAMES if n in rails), None)
        if total is not None:
            self.total_channel, self.total_source = total, f"rail {total} (module input)"
        else:
            self.total_channel = DERIVED_TOTAL
            self.total_source = "sum of every rail (no VDD_IN rail found; nested rails may be counted twice)"

    def sample_period_s(self, poll_period_s: float) -> float:
        """tegrastats prints at its own interval, whatever the poll period."""
        return self.interval_ms / 1e3

    def channels(self) -> List[ChannelInfo]:
        """One channel per rail (current value), plus the derived total when there is no VDD_IN."""
        source = f"{self.cmd} --interval {self.interval_ms}"
        infos = [ChannelInfo(rail, source, "mW") for rail in self.rails]
        if self.total_channel == DERIVED_TOTAL:
            infos.append(ChannelInfo(DERIVED_TOTAL, "sum of rails", "W"))
        return infos

    def poll(self) -> List[MeterSample]:
        """Every sample parsed since the last call; raises ``MeterError`` once tegrastats has exited."""
        with self._lock:
            samples = list(self._queue)
            self._queue.clear()
        if not samples and self._proc.poll() is not None:
            raise MeterError(f"{self.cmd} exited with status {self._proc.returncode}")
        return samples

    def close(self) -> None:
        """Stop tegrastats and its reader thread."""
        if self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(_STOP_WAIT_S)
            except subprocess.TimeoutExpired:
                logger.warning("%s did not stop within %.0f s; killing it", self.cmd, _STOP_WAIT_S)
                self._proc.kill()
                self._proc.wait(_STOP_WAIT_S)
        self._thread.join(_STOP_WAIT_S)
        if self._proc.stdout is not None:
            self._proc.stdout.close()

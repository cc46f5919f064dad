"""Common pieces of every driver: the counters, the device-clock description and the errors.

A driver turns one device into ``drivers.Sample`` objects. The daemon treats all drivers alike:
``open()``, then ``read(timeout_s)`` in the driver's own thread (``None`` on timeout, never an
exception for bad bytes), then ``close()``; ``counters`` is a plain dict it can publish as is.
"""

import logging
from dataclasses import dataclass
from typing import Dict, Optional

from drivers.sample import Sample

logger = logging.getLogger(__name__)


class DriverError(Exception):
    """A driver cannot do what it was configured to do (bad config, device refused a command)."""


class MissingDependencyError(DriverError):
    """An optional package a chosen driver needs is not installed."""


@dataclass(frozen=True)
class DeviceClock:
    """How to read a stream's ``Sample.t_device_s`` (what the timebase needs to map it).

    Attributes:
        kind: ``"device"`` (the sensor's own counter), ``"index"`` (sample index times the
            nominal period: a clock that runs at the sensor's real rate, not its nominal one) or
            ``"arrival"`` (no device time: ``t_device_s`` is ``None``).
        tick_s: seconds per raw device tick (``t_device_s / tick_s`` is the raw counter).
        wrap_ticks: the counter's modulus when it wraps (the driver reports the raw, wrapping
            value; the timebase unwraps it), ``None`` when it does not wrap.
        max_drift_ppm: suggested clamp on the fitted drift (platform.md section 4.2).
    """

    kind: str
    tick_s: float = 1.0
    wrap_ticks: Optional[int] = None
    max_drift_ppm: float = 2000.0


ARRIVAL_CLOCK = DeviceClock(kind="arrival")

# Counters every driver keeps; protocol-specific ones are added by each driver.
BASE_COUNTERS = ("frames_ok", "frames_bad", "bytes_skipped", "reconnects")


class Driver:
    """Base class: holds the stream name and the counters; subclasses do the I/O.

    Subclasses implement ``open``, ``read`` and ``close`` and set ``clock``. ``counters``
    returns a snapshot so a reader in another thread never sees a dict being resized.
    """

    clock: DeviceClock = ARRIVAL_CLOCK

    def __init__(self, stream: str) -> None:
        self.stream = stream
        self._counters: Dict[str, int] = {name: 0 for name in BASE_COUNTERS}

    @property
    def counters(self) -> Dict[str, int]:
        """A copy of the counters (frames_ok, frames_bad, bytes_skipped, reconnects, ...)."""
        return dict(self._counters)

    def _count(self, name: str, amount: int = 1) -> None:
        """Add ``amount`` to counter ``name`` (created at zero on first use)."""
        self._counters[name] = self._counters.get(name, 0) + amount

    def open(self) -> None:
        """Open the device; raise ``DriverError`` when it cannot be configured."""
        raise NotImplementedError

    def read(self, timeout_s: float) -> Optional[Sample]:
        """Return the next sample, or ``None`` when none arrived within ``timeout_s`` seconds."""
        raise NotImplementedError

    def close(self) -> None:
        """Release the device; safe to call twice."""
        raise NotImplementedError

    def __enter__(self) -> "Driver":
        self.open()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

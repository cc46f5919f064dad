"""Progress-gated systemd watchdog: ping ``WATCHDOG=1`` only while every pipeline stage moves.

systemd kills a ``WatchdogSec=`` service that stops pinging (SIGABRT, then ``Restart=on-failure``).
A thread that pings on a timer would keep a daemon alive whose inference loop is stuck in a driver
call or a GPU hang, so pings here are earned: each stage (every driver's reader loop, the inference
loop) exposes a monotonically increasing progress counter, and a ping goes out only when every
registered counter advanced since the previous check. The check runs every ``WATCHDOG_USEC / 2``
(platform.md section 7), so while all stages are healthy it pings at that period; one missed check
already leaves systemd only the other half of the timeout.

What counts as progress is the caller's choice; the daemon should count loop iterations, not data:
a reader loop that returns from ``read(timeout_s)`` with ``None`` because a sensor is unplugged is
alive (the stream is masked as stale, readiness reports it), whereas a reader blocked inside the
kernel is not. ``ProgressCounter`` is such a counter, cheap enough for every loop iteration.

Counters are compared with the previous *check*, not the previous ping: after a skipped ping each
stage must move again, so a stage that stopped after the last ping cannot keep the daemon alive on
its earlier progress. Without ``$WATCHDOG_USEC`` (not under systemd) the checks still run and log,
at ``default_interval_s``, so the same stall is visible in the log.
"""

import logging
import threading
import time
from typing import Callable, Dict, List, NamedTuple, Optional

from cosmo_edge.sdnotify import Notifier, watchdog_timeout_s

logger = logging.getLogger(__name__)

ProgressProbe = Callable[[], int]


class ProgressCounter:
    """A counter one loop bumps each iteration (single writer; readers in any thread).

    ``tick()`` is a plain integer increment: with one writer per counter no lock is needed.
    """

    def __init__(self) -> None:
        self.value = 0

    def tick(self, amount: int = 1) -> None:
        """Record ``amount`` units of progress."""
        self.value += amount

    def __call__(self) -> int:
        """The current count (so a counter is itself a probe)."""
        return self.value


class CheckResult(NamedTuple):
    """Outcome of one check: whether it pinged, the stalled stages, the probes that failed."""

    pinged: bool
    stalled: List[str]
    failed: List[str]


class Watchdog:
    """Checks the registered progress probes and pings systemd when all of them advanced.

    Args:
        notifier: where ``WATCHDOG=1`` goes (a no-op notifier is fine).
        interval_s: seconds between checks; default ``WATCHDOG_USEC / 2`` from the environment,
            else ``default_interval_s``.
        default_interval_s: the interval when there is no systemd watchdog (s).
        on_stall: called with the stalled stage names after a skipped ping (e.g. to set STATUS=).

    Attributes:
        counters: ``checks``, ``pings``, ``skipped`` (checks that withheld a ping), ``probe_errors``.
    """

    def __init__(
        self,
        notifier: Notifier,
        interval_s: Optional[float] = None,
        default_interval_s: float = 10.0,
        on_stall: Optional[Callable[[List[str]], None]] = None,
    ) -> None:
        timeout_s = watchdog_timeout_s()
        if interval_s is None:
            interval_s = timeout_s / 2.0 if timeout_s is not None else default_interval_s
        if interval_s <= 0:
            raise ValueError(f"watchdog interval must be > 0 s, got {interval_s}")
        self.notifier = notifier
        self.interval_s = float(interval_s)
        self.systemd_timeout_s = timeout_s
        self.on_stall = on_stall
        self.counters: Dict[str, int] = {"checks": 0, "pings": 0, "skipped": 0, "probe_errors": 0}
        self.last_result: Optional[CheckResult] = None
        self._probes: Dict[str, ProgressProbe] = {}
        self._last: Dict[str, Optional[int]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None

    def add_probe(self, name: str, probe: ProgressProbe) -> None:
        """Watch ``probe`` as stage ``name``; its first reading is the baseline (not yet progress)."""
        with self._lock:
            if name in self._probes:
                raise ValueError(f"watchdog stage {name!r} is already registered")
            self._probes[name] = probe
            self._last[name] = self._read(name, probe)

    def remove_probe(self, name: str) -> None:
        """Stop watching stage ``name`` (a stage shut down on purpose); unknown names are ignored."""
        with self._lock:
            self._probes.pop(name, None)
            self._last.pop(name, None)

    def stages(self) -> List[str]:
        """Names of the watched stages, in registration order."""
        with self._lock:
            return list(self._probes)

    def _read(self, name: str, probe: ProgressProbe) -> Optional[int]:
        """One probe reading, or None (counted, logged) when the probe raised."""
        try:
            return int(probe())
        except Exception:  # a broken probe is a stalled stage, never a dead supervisor
            self.counters["probe_errors"] += 1
            logger.exception("watchdog probe %s failed", name)
            return None

    def check(self) -> CheckResult:
        """Read every probe, compare with the previous check, ping when all advanced."""
        with self._lock:
            stalled: List[str] = []
            failed: List[str] = []
            for name, probe in self._probes.items():
                value = self._read(name, probe)
                previous = self._last[name]
                if value is None:
                    failed.append(name)
                elif previous is None or value <= previous:
                    stalled.append(name)
                self._last[name] = value
            self.counters["checks"] += 1
            blocked = stalled + failed
            if not self._probes:
                blocked = ["(no stages registered)"]
            pinged = False
            if not blocked:
                self.notifier.watchdog()
                self.counters["pings"] += 1
                pinged = True
            else:
                self.counters["skipped"] += 1
            result = CheckResult(pinged, stalled, failed)
            self.last_result = result
        if not pinged:
            logger.warning("no progress in %.1f s from %s: watchdog ping withheld", self.interval_s, blocked)
            if self.on_stall is not None:
                self.on_stall(blocked)
        return result

    def start(self) -> None:
        """Run ``check`` every ``interval_s`` in a daemon thread until ``stop``."""
        if self._thread is not None:
            raise RuntimeError("watchdog already started")
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="watchdog", daemon=True)
        self._thread.start()
        where = "systemd" if self.notifier.enabled and self.systemd_timeout_s else "log only"
        logger.info("watchdog checks %s every %.1f s (%s)", self.stages(), self.interval_s, where)

    def stop(self, timeout_s: float = 2.0) -> None:
        """Stop the thread (no ping is sent on the way out)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            if self._thread.is_alive():
                logger.warning("watchdog thread still running after %.1f s", timeout_s)
            self._thread = None

    def _run(self) -> None:
        next_s = time.monotonic() + self.interval_s
        while not self._stop.wait(max(0.0, next_s - time.monotonic())):
            next_s += self.interval_s
            if next_s < time.monotonic():  # the thread itself was held up: do not burst
                next_s = time.monotonic() + self.interval_s
            try:
                self.check()
            except Exception:  # the supervisor must outlive a bug in on_stall
                logger.exception("watchdog check failed")

"""Driver threads: each sensor is read in its own thread and restarted with backoff when it fails.

A ``SensorThread`` owns one stream: it builds the driver (``factory``), opens it, and loops
``driver.read(timeout)`` -> ``StreamChannel.push`` (timebase + ring). If building, opening, reading or
pushing raises, the driver is closed, the failure is logged and counted, and after a backoff delay
(doubling from ``backoff_initial_s`` up to ``backoff_max_s``; back to the start once a driver has run
for ``healthy_s``) a fresh driver is built. A failing sensor never stops the others: nothing leaves
the thread but counters. ``stop()`` ends the loop within one read timeout; ``join`` then returns.

Serial drivers already reconnect a vanished port on their own (``drivers.serial_port``); this thread
is the outer guard for everything else (a radar that refuses its config, a camera that is gone, a
bug in a parser).
"""

import logging
import threading
import time
from typing import Any, Callable, Dict, Optional

from cosmo_edge.windows import StreamChannel

logger = logging.getLogger(__name__)

STARTING, OPEN, BACKOFF, STOPPED = "starting", "open", "backoff", "stopped"

DriverFactory = Callable[[], Any]


class SensorThread(threading.Thread):
    """Reads one driver into one channel; see the module docstring.

    Args:
        name: stream / modality name (the thread is called ``sensor-<name>``).
        factory: builds a new, unopened driver.
        channel: where samples go.
        first_driver: an already-built driver to use for the first attempt (saves one construction).
        read_timeout_s: ``driver.read`` timeout; also bounds how long ``stop()`` takes to act (s).
        backoff_initial_s, backoff_max_s: restart delay range (s).
        healthy_s: a driver that ran this long resets the delay to ``backoff_initial_s`` (s).
    """

    def __init__(
        self,
        name: str,
        factory: DriverFactory,
        channel: StreamChannel,
        first_driver: Optional[Any] = None,
        read_timeout_s: float = 0.1,
        backoff_initial_s: float = 0.5,
        backoff_max_s: float = 10.0,
        healthy_s: float = 10.0,
    ) -> None:
        super().__init__(name=f"sensor-{name}", daemon=True)
        self.stream = name
        self.factory = factory
        self.channel = channel
        self.read_timeout_s = float(read_timeout_s)
        self.backoff_initial_s = float(backoff_initial_s)
        self.backoff_max_s = float(backoff_max_s)
        self.healthy_s = float(healthy_s)
        self.opened = threading.Event()  # set the first time a driver opened
        self.state = STARTING
        self.last_error: Optional[str] = None
        self.failures = 0  # build/open/read errors
        self.restarts = 0  # drivers built after the first
        self.samples = 0  # samples read
        self.reads = 0  # read-loop iterations, timeouts included (the watchdog's progress probe)
        self.refused = 0  # samples the ring refused (late / duplicate stamps)
        self.last_sample_ns: Optional[int] = None
        self._stop_event = threading.Event()
        self._first = first_driver
        self._driver: Optional[Any] = None

    # ------------------------------------------------------------------ control

    def stop(self) -> None:
        """Ask the thread to finish (the current driver is closed by the thread itself)."""
        self._stop_event.set()

    def counters(self) -> Dict[str, Any]:
        """State, restart and sample counters plus the current driver's own counters."""
        driver = self._driver
        driver_counters: Dict[str, Any] = {}
        if driver is not None:
            driver_counters = {k: v for k, v in driver.counters.items() if v}
        age_s = None
        if self.last_sample_ns is not None:
            age_s = round((time.monotonic_ns() - self.last_sample_ns) * 1e-9, 3)
        return {
            "state": self.state,
            "samples": self.samples,
            "reads": self.reads,
            "refused": self.refused,
            "failures": self.failures,
            "restarts": self.restarts,
            "last_error": self.last_error,
            "last_sample_age_s": age_s,
            "driver": driver_counters,
            "ring": dict(self.channel.ring.counters),
            "timebase": self.channel.timebase.state if self.channel.timebase is not None else None,
        }

    # ------------------------------------------------------------------ thread body

    def run(self) -> None:
        delay_s = self.backoff_initial_s
        attempt = 0
        while not self._stop_event.is_set():
            if attempt:
                self.restarts += 1
            attempt += 1
            started = time.monotonic()
            self._run_one()
            if self._stop_event.is_set():
                break
            if time.monotonic() - started >= self.healthy_s:
                delay_s = self.backoff_initial_s
            self.state = BACKOFF
            logger.warning("sensor %s: restarting in %.1f s (%s)", self.stream, delay_s, self.last_error)
            if self._stop_event.wait(delay_s):
                break
            delay_s = min(self.backoff_max_s, delay_s * 2.0)
        self.state = STOPPED
        logger.info("sensor %s stopped: %d samples, %d restarts", self.stream, self.samples, self.restarts)

    def _run_one(self) -> None:
        """Build, open and read one driver until it fails or the thread is stopped; always close it."""
        driver = None
        try:
            driver, self._first = (self._first or self.factory()), None
            self._driver = driver
            driver.open()
            self.state = OPEN
            self.opened.set()
            logger.info("sensor %s open", self.stream)
            self._read_loop(driver)
        except Exception as exc:  # noqa: BLE001 - any driver failure must stay inside this thread
            self.failures += 1
            self.last_error = f"{type(exc).__name__}: {exc}"
            logger.exception("sensor %s failed", self.stream)
        finally:
            if driver is not None:
                self._close(driver)

    def _read_loop(self, driver: Any) -> None:
        channel, timeout_s = self.channel, self.read_timeout_s
        while not self._stop_event.is_set():
            sample = driver.read(timeout_s)
            self.reads += 1
            if sample is None:
                continue
            self.samples += 1
            self.last_sample_ns = time.monotonic_ns()
            if not channel.push(sample):
                self.refused += 1

    def _close(self, driver: Any) -> None:
        try:
            driver.close()
        except Exception as exc:  # noqa: BLE001 - a failing close must not stop the restart loop
            logger.warning("sensor %s: close failed: %s", self.stream, exc)

"""A sampler thread that polls a meter at a fixed period on the monotonic clock.

Deadlines are ``start + k x period`` (no drift from the time each poll takes). A poll that finishes
after the next deadline skips the missed deadlines instead of bursting to catch up, so late polls
show up as gaps in the trace rather than as clustered samples. ``time.sleep`` is the only wait; at
50-100 Hz its overshoot (about 0.1 ms on Linux) is far below the period.

Typical use::

    with Sampler(meter, period_s=0.02) as sampler:
        t0 = time.monotonic_ns()
        run_workload()
        t1 = time.monotonic_ns()
        sampler.wait_past(t1)
    trace = sampler.trace()

``start()`` returns once the first sample exists and ``wait_past(t_ns)`` once a sample later than
``t_ns`` exists, so the trace covers the workload's window at both ends.
"""

import logging
import threading
import time
from typing import Any, Dict, List, Optional

import numpy as np

from cosmo_edge.energy.base import EnergyMeter, MeterError, MeterSample
from cosmo_edge.energy.integrate import Trace

logger = logging.getLogger(__name__)

_WAIT_PERIODS = 10


class SamplerError(RuntimeError):
    """The sampler could not get the samples it needs (the meter failed or fell silent)."""


class Sampler:
    """Polls ``meter`` every ``period_s`` seconds in a daemon thread and keeps every sample."""

    def __init__(self, meter: EnergyMeter, period_s: float) -> None:
        if period_s <= 0:
            raise ValueError(f"period_s must be positive, got {period_s}")
        self.meter = meter
        self.period_s = float(period_s)
        self.samples: List[MeterSample] = []
        self.late_polls = 0
        self.max_poll_s = 0.0
        self.error: Optional[BaseException] = None
        self._lock = threading.Lock()
        self._new_sample = threading.Condition(self._lock)
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None

    def start(self, first_sample_timeout_s: Optional[float] = None) -> "Sampler":
        """Start the thread and wait for the first sample; a meter without counters starts nothing."""
        if self._thread is not None:
            raise SamplerError("sampler already started")
        if not self.meter.available:
            return self
        self._thread = threading.Thread(target=self._run, name=f"sampler-{self.meter.name}", daemon=True)
        self._thread.start()
        self.wait_past(0, first_sample_timeout_s)
        return self

    def _run(self) -> None:
        start_s = time.monotonic()
        k = 0
        while not self._stop.is_set():
            polled_s = time.monotonic()
            try:
                new = self.meter.poll()
            except MeterError as exc:
                logger.error("sampler: %s meter failed: %s", self.meter.name, exc)
                with self._lock:
                    self.error = exc
                    self._new_sample.notify_all()
                return
            done_s = time.monotonic()
            self.max_poll_s = max(self.max_poll_s, done_s - polled_s)
            if new:
                with self._lock:
                    self.samples.extend(new)
                    self._new_sample.notify_all()
            k += 1
            deadline_s = start_s + k * self.period_s
            if done_s > deadline_s:
                missed = int((done_s - deadline_s) // self.period_s) + 1
                self.late_polls += 1
                k += missed
                deadline_s = start_s + k * self.period_s
            self._stop.wait(max(0.0, deadline_s - time.monotonic()))

    def wait_past(self, t_ns: int, timeout_s: Optional[float] = None) -> None:
        """Block until a sample stamped after ``t_ns`` exists; raises ``SamplerError`` on timeout."""
        if not self.meter.available:
            return
        period = self.meter.sample_period_s(self.period_s)
        timeout_s = timeout_s if timeout_s is not None else max(1.0, _WAIT_PERIODS * period)
        deadline = time.monotonic() + timeout_s
        with self._lock:
            while not (self.samples and self.samples[-1].t_ns > t_ns):
                if self.error is not None:
                    raise SamplerError(f"{self.meter.name} meter failed: {self.error}")
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise SamplerError(f"no {self.meter.name} sample within {timeout_s:.1f} s")
                self._new_sample.wait(remaining)

    def stop(self) -> None:
        """Stop the thread (idempotent)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(max(1.0, 5 * self.period_s))

    def trace(self) -> Trace:
        """Every sample so far as a ``Trace`` (channels of the first sample; times strictly increasing)."""
        with self._lock:
            samples = list(self.samples)
        channels = list(samples[0].values) if samples else []
        times: List[float] = []
        values: Dict[str, List[float]] = {c: [] for c in channels}
        for sample in samples:
            t_s = sample.t_ns / 1e9
            if times and t_s <= times[-1]:
                continue  # a clock tie; the trapezoid needs strictly increasing times
            times.append(t_s)
            for channel in channels:
                values[channel].append(sample.values[channel])
        return Trace(
            meter=self.meter.name,
            quantity=self.meter.quantity,
            t_s=np.asarray(times),
            values={c: np.asarray(v) for c, v in values.items()},
            nominal_period_s=self.meter.sample_period_s(self.period_s),
            total_channel=self.meter.total_channel,
        )

    def stats(self) -> Dict[str, Any]:
        """Sampling health: period, sample count, late polls, slowest poll."""
        return {
            "period_s": self.period_s,
            "samples": len(self.samples),
            "late_polls": self.late_polls,
            "max_poll_s": round(self.max_poll_s, 6),
        }

    def __enter__(self) -> "Sampler":
        return self.start()

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()

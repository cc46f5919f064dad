"""Latency of any ``predict(batch)`` callable: percentiles, throughput, peak RSS and CPU use.

``measure_latency`` times each call with ``time.perf_counter()`` after a few untimed warm-up calls,
until ``duration_s`` has passed or ``max_iterations`` calls were made. It also records:

- the loop's start and end on ``time.monotonic_ns()``, so an energy trace can be cut to the loop;
- CPU seconds of this process (``os.times``: user + system, every thread) per wall second, i.e. cores
  busy; and the whole machine's busy fraction from ``/proc/stat`` where it exists, because other
  processes on a shared machine change latency too;
- peak resident memory during the loop: Linux lets a process reset its high-water mark by writing
  ``5`` to ``/proc/self/clear_refs``; ``VmHWM`` in ``/proc/self/status`` is then the loop's peak. Where
  that is not possible the process-lifetime peak (``getrusage``) is reported and labelled so.
"""

import logging
import os
import resource
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np

logger = logging.getLogger(__name__)

PERCENTILES = (50, 90, 95, 99)
ProgressFn = Callable[[float, int], None]
_PROGRESS_EVERY_S = 0.2


def reset_peak_rss() -> bool:
    """Reset this process's peak-RSS mark (Linux ``clear_refs``); False where that is not possible."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as handle:
            handle.write("5")
    except OSError as exc:
        logger.debug("cannot reset peak RSS: %s", exc)
        return False
    return True


def peak_rss_bytes() -> Tuple[int, str]:
    """``(bytes, source)``: ``VmHWM`` from /proc/self/status, else ``getrusage`` (process lifetime)."""
    try:
        with open("/proc/self/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024, "VmHWM"
    except OSError as exc:
        logger.debug("no /proc/self/status: %s", exc)
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    scale = 1 if sys.platform == "darwin" else 1024  # bytes on macOS, KiB on Linux
    return int(maxrss) * scale, "getrusage (process lifetime)"


def system_cpu_ticks() -> Optional[Tuple[int, int]]:
    """``(busy, total)`` jiffies of the whole machine from /proc/stat, or None where it does not exist."""
    try:
        with open("/proc/stat", encoding="ascii") as handle:
            fields = [int(v) for v in handle.readline().split()[1:]]
    except (OSError, ValueError) as exc:
        logger.debug("no /proc/stat: %s", exc)
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    total = sum(fields[:8])  # user nice system idle iowait irq softirq steal
    return total - idle, total


def _process_cpu_s() -> float:
    times = os.times()
    return times.user + times.system


@dataclass
class LatencyResult:
    """What ``measure_latency`` recorded; ``summary()`` gives the numbers a report prints."""

    latencies_s: np.ndarray
    batch_size: int
    wall_s: float
    t_start_ns: int
    t_end_ns: int
    cpu_s: float
    peak_rss_bytes: int
    peak_rss_source: str
    system_busy_fraction: Optional[float] = None
    extra: Dict[str, Any] = field(default_factory=dict)

    @property
    def iterations(self) -> int:
        """Number of timed calls."""
        return int(self.latencies_s.size)

    @property
    def samples(self) -> int:
        """Windows processed (calls x batch size)."""
        return self.iterations * self.batch_size

    def summary(self) -> Dict[str, Any]:
        """Percentiles and max in ms, throughput, CPU use and peak RSS as a JSON-able dict."""
        ms = self.latencies_s * 1e3
        result: Dict[str, Any] = {f"p{p}_ms": float(np.percentile(ms, p)) for p in PERCENTILES}
        cores = os.cpu_count() or 1
        result.update(
            {
                "max_ms": float(ms.max()),
                "mean_ms": float(ms.mean()),
                "iterations": self.iterations,
                "batch_size": self.batch_size,
                "wall_s": self.wall_s,
                "throughput_per_s": self.samples / self.wall_s,
                "cpu_cores_busy": self.cpu_s / self.wall_s,
                "cpu_percent_of_machine": 100.0 * self.cpu_s / self.wall_s / cores,
                "machine_busy_percent": None
                if self.system_busy_fraction is None
                else 100.0 * self.system_busy_fraction,
                "peak_rss_mb": self.peak_rss_bytes / 2**20,
                "peak_rss_source": self.peak_rss_source,
            }
        )
        result.update(self.extra)
        return result


def measure_latency(
    predict: Callable[[Any], Any],
    batch: Any,
    batch_size: int = 1,
    duration_s: float = 10.0,
    max_iterations: Optional[int] = None,
    warmup: int = 5,
    min_iterations: int = 10,
    progress: Optional[ProgressFn] = None,
    clock: Callable[[], float] = time.perf_counter,
) -> LatencyResult:
    """Time ``predict(batch)`` repeatedly (see the module docstring).

    Args:
        predict: any callable; its result is ignored.
        batch: passed unchanged to every call.
        batch_size: windows per call, for throughput.
        duration_s: stop after this many seconds of timed calls (at least ``min_iterations`` calls).
        max_iterations: stop after this many timed calls, if given.
        warmup: untimed calls first (allocations, lazy initialisation, caches).
        progress: called as ``progress(elapsed_s, iterations)`` at most every 0.2 s, outside the timing.
        clock: the timer in seconds (``time.perf_counter``; tests pass a fake one).
    """
    for _ in range(max(0, warmup)):
        predict(batch)
    rss_reset = reset_peak_rss()
    latencies: List[float] = []
    ticks_before = system_cpu_ticks()
    cpu_before = _process_cpu_s()
    t_start_ns = time.monotonic_ns()
    started = clock()
    last_report = started
    while True:
        t0 = clock()
        predict(batch)
        t1 = clock()
        latencies.append(t1 - t0)
        count = len(latencies)
        if max_iterations is not None and count >= max_iterations:
            break
        if t1 - started >= duration_s and count >= min_iterations:
            break
        if progress is not None and t1 - last_report >= _PROGRESS_EVERY_S:
            progress(t1 - started, count)
            last_report = t1
    wall_s = clock() - started
    t_end_ns = time.monotonic_ns()
    cpu_s = _process_cpu_s() - cpu_before
    ticks_after = system_cpu_ticks()
    busy: Optional[float] = None
    if ticks_before is not None and ticks_after is not None and ticks_after[1] > ticks_before[1]:
        busy = (ticks_after[0] - ticks_before[0]) / (ticks_after[1] - ticks_before[1])
    rss, source = peak_rss_bytes()
    if not rss_reset and source == "VmHWM":
        source = "VmHWM (process lifetime; reset not permitted)"
    if progress is not None:
        progress(wall_s, len(latencies))
    return LatencyResult(
        latencies_s=np.asarray(latencies),
        batch_size=int(batch_size),
        wall_s=wall_s,
        t_start_ns=t_start_ns,
        t_end_ns=t_end_ns,
        cpu_s=cpu_s,
        peak_rss_bytes=rss,
        peak_rss_source=source,
        system_busy_fraction=busy,
    )

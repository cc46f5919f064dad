"""Simulated time: one timeline for the run and one imperfect clock per device.

Simulation time starts at 0 at host monotonic ``t0_ns`` and runs ``speed`` times faster than the
host clock. Each device samples on its own clock, which reads ``offset_s`` at simulation time 0
and runs ``drift_ppm`` fast; each sample reaches the host ``latency_s`` plus an exponential
``jitter_s`` (mean) after it was taken, never before the previous one (bytes on one link keep
their order).
"""

import logging
from dataclasses import dataclass

import numpy as np

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ClockModel:
    """One device's clock and delivery delay (seconds; ppm)."""

    offset_s: float = 0.0
    drift_ppm: float = 0.0
    jitter_s: float = 0.002
    latency_s: float = 0.001

    @property
    def rate(self) -> float:
        """Device seconds per simulation second."""
        return 1.0 + self.drift_ppm * 1e-6

    def device_time(self, sim_s: np.ndarray) -> np.ndarray:
        """Device clock reading at simulation times ``sim_s``."""
        return self.offset_s + np.asarray(sim_s) * self.rate

    def sim_time(self, device_s: np.ndarray) -> np.ndarray:
        """Simulation time at which the device clock reads ``device_s``."""
        return (np.asarray(device_s) - self.offset_s) / self.rate


@dataclass(frozen=True)
class Timeline:
    """Maps simulation seconds to host monotonic nanoseconds."""

    t0_ns: int
    speed: float = 1.0

    def host_ns(self, sim_s: np.ndarray) -> np.ndarray:
        """Host monotonic time (int64 ns) of simulation times ``sim_s``."""
        return self.t0_ns + np.rint(np.asarray(sim_s, dtype=np.float64) / self.speed * 1e9).astype(np.int64)

    def sim_s(self, host_ns: int) -> float:
        """Simulation time at host monotonic ``host_ns``."""
        return (host_ns - self.t0_ns) * 1e-9 * self.speed


def arrival_times_ns(
    emit_ns: np.ndarray, clock: ClockModel, rng: np.random.Generator, previous_ns: int
) -> np.ndarray:
    """Host arrival times of samples emitted at ``emit_ns``: latency + exponential jitter, in order."""
    delay_s = clock.latency_s + (rng.exponential(clock.jitter_s, len(emit_ns)) if clock.jitter_s > 0 else 0.0)
    arrivals = np.asarray(emit_ns, dtype=np.int64) + np.rint(np.asarray(delay_s) * 1e9).astype(np.int64)
    return np.maximum.accumulate(np.maximum(arrivals, previous_ns))

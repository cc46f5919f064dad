"""Energy from sampled power or energy counters: trapezoid integration, idle subtraction, gaps.

A ``Trace`` is what a ``Sampler`` recorded: sample times on the monotonic clock (seconds) and one value
array per channel, either power in watts (``power_w``) or cumulative energy in joules (``energy_j``).

For power, E = sum_i (P_i + P_{i-1}) / 2 * (t_i - t_{i-1}) (platform.md section 8), over a window
``[t0, t1]`` whose end points are linearly interpolated between the neighbouring samples. For counters,
E = E(t1) - E(t0) with both ends linearly interpolated. A window the trace does not cover is never
extrapolated: its energy is ``None`` with the reason.

Per inference: gross = E / N and net = (E - P_idle x T) / N, where P_idle is the mean power of an idle
baseline on the same channel. Every result carries the achieved sample rate and each gap longer than
``GAP_FACTOR`` nominal periods.
"""

import logging
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from cosmo_edge.energy.base import ENERGY, POWER

logger = logging.getLogger(__name__)

GAP_FACTOR = 5.0


@dataclass
class Trace:
    """Samples of one meter: ``t_s`` (monotonic seconds, increasing) and ``values[channel]`` arrays."""

    meter: str
    quantity: str
    t_s: np.ndarray
    values: Dict[str, np.ndarray]
    nominal_period_s: float
    total_channel: Optional[str] = None

    def __post_init__(self) -> None:
        if self.quantity not in (POWER, ENERGY):
            raise ValueError(f"quantity must be {POWER!r} or {ENERGY!r}, got {self.quantity!r}")
        self.t_s = np.asarray(self.t_s, dtype=np.float64)
        self.values = {k: np.asarray(v, dtype=np.float64) for k, v in self.values.items()}
        for channel, v in self.values.items():
            if v.shape != self.t_s.shape:
                raise ValueError(f"channel {channel}: {v.shape[0]} values for {self.t_s.shape[0]} times")
        if self.t_s.size > 1 and np.any(np.diff(self.t_s) <= 0):
            raise ValueError("sample times must increase strictly")


@dataclass
class WindowEnergy:
    """Energy of one channel over ``[t0, t1]``; ``energy_j`` is None when the trace does not cover it."""

    channel: str
    duration_s: float
    energy_j: Optional[float]
    mean_power_w: Optional[float]
    samples: int
    rate_hz: Optional[float]
    gaps: List[Tuple[float, float]] = field(default_factory=list)
    reason: str = ""

    def to_dict(self) -> Dict[str, Any]:
        """JSON-able form (gaps as [start_s, length_s] relative to the window start)."""
        return {
            "channel": self.channel,
            "duration_s": self.duration_s,
            "energy_j": self.energy_j,
            "mean_power_w": self.mean_power_w,
            "samples": self.samples,
            "rate_hz": self.rate_hz,
            "gaps_s": [[round(a, 4), round(b, 4)] for a, b in self.gaps],
            **({"reason": self.reason} if self.reason else {}),
        }


def trapezoid_energy_j(t_s: Sequence[float], power_w: Sequence[float]) -> float:
    """Trapezoid integral of power samples (W) over their times (s), in joules."""
    t = np.asarray(t_s, dtype=np.float64)
    p = np.asarray(power_w, dtype=np.float64)
    if t.size < 2:
        return 0.0
    return float(np.sum((p[1:] + p[:-1]) * 0.5 * np.diff(t)))


def clip_samples(
    t_s: np.ndarray, values: np.ndarray, t0_s: float, t1_s: float
) -> Tuple[np.ndarray, np.ndarray]:
    """Samples strictly inside ``(t0, t1)`` with linearly interpolated values at ``t0`` and ``t1``.

    The caller checks coverage first (``t_s[0] <= t0`` and ``t_s[-1] >= t1``).
    """
    inside = (t_s > t0_s) & (t_s < t1_s)
    ends = np.interp([t0_s, t1_s], t_s, values)
    t = np.concatenate([[t0_s], t_s[inside], [t1_s]])
    v = np.concatenate([[ends[0]], values[inside], [ends[1]]])
    return t, v


def find_gaps(
    t_s: Sequence[float], nominal_period_s: float, factor: float = GAP_FACTOR
) -> List[Tuple[float, float]]:
    """``(start_s, length_s)`` of every interval between consecutive samples longer than factor x period."""
    t = np.asarray(t_s, dtype=np.float64)
    if t.size < 2:
        return []
    dt = np.diff(t)
    index = np.flatnonzero(dt > factor * nominal_period_s)
    return [(float(t[i]), float(dt[i])) for i in index]


def achieved_rate_hz(t_s: Sequence[float]) -> Optional[float]:
    """Mean sample rate (samples - 1) / span, or None with fewer than two samples."""
    t = np.asarray(t_s, dtype=np.float64)
    if t.size < 2 or t[-1] <= t[0]:
        return None
    return float((t.size - 1) / (t[-1] - t[0]))


def window_energy(trace: Trace, channel: str, t0_s: float, t1_s: float) -> WindowEnergy:
    """Energy of ``channel`` over ``[t0_s, t1_s]`` (see the module docstring)."""
    if channel not in trace.values:
        raise KeyError(f"trace of {trace.meter} has no channel {channel!r} (has {sorted(trace.values)})")
    if t1_s <= t0_s:
        raise ValueError(f"empty window [{t0_s}, {t1_s}]")
    duration_s = float(t1_s - t0_s)
    t, v = trace.t_s, trace.values[channel]
    # The samples that bound the window: one before t0 (if any), those inside, one after t1 (if any).
    first = max(int(np.searchsorted(t, t0_s, side="right")) - 1, 0)
    last = min(int(np.searchsorted(t, t1_s, side="left")) + 1, t.size)
    used = t[first:last]
    gaps = [(start - t0_s, length) for start, length in find_gaps(used, trace.nominal_period_s)]
    rate = achieved_rate_hz(used)
    if t.size < 2 or t[0] > t0_s or t[-1] < t1_s:
        span = f"[{t[0] - t0_s:.3f}, {t[-1] - t0_s:.3f}] s" if t.size else "no samples"
        reason = f"samples cover {span} of a {duration_s:.3f} s window; not extrapolated"
        return WindowEnergy(channel, duration_s, None, None, int(used.size), rate, gaps, reason)
    if trace.quantity == POWER:
        tc, vc = clip_samples(t, v, t0_s, t1_s)
        energy_j = trapezoid_energy_j(tc, vc)
    else:
        ends = np.interp([t0_s, t1_s], t, v)
        energy_j = float(ends[1] - ends[0])
    return WindowEnergy(channel, duration_s, energy_j, energy_j / duration_s, int(used.size), rate, gaps)


def idle_power_w(trace: Trace, t0_s: float, t1_s: float) -> Dict[str, WindowEnergy]:
    """The idle baseline per channel: ``mean_power_w`` of each channel over ``[t0, t1]``."""
    return {channel: window_energy(trace, channel, t0_s, t1_s) for channel in trace.values}


def per_inference(window: WindowEnergy, inferences: int, idle_w: Optional[float]) -> Dict[str, Any]:
    """Gross E / N and net (E - P_idle x T) / N in joules; None where the energy or baseline is missing."""
    if inferences <= 0:
        raise ValueError("inferences must be positive")
    result: Dict[str, Any] = window.to_dict()
    result.update({"inferences": int(inferences), "idle_power_w": idle_w})
    if window.energy_j is None:
        result.update({"gross_j_per_inference": None, "net_j_per_inference": None})
        return result
    result["gross_j_per_inference"] = window.energy_j / inferences
    if idle_w is None:
        result["net_j_per_inference"] = None
    else:
        net_j = window.energy_j - idle_w * window.duration_s
        result["net_energy_j"] = net_j
        result["net_j_per_inference"] = net_j / inferences
    return result

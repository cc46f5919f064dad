"""Map one sensor's clock onto the host clock (``time.monotonic_ns()``), one estimator per stream.

Model (docs/platform.md section 4.2): ``host = d + a + b * (d - d_ref)`` with ``d`` the device time in
seconds (unwrapped, scaled by ``tick_s``), ``a`` the clock offset plus the minimum transport lag and
``b`` the drift. Arrivals are only ever late, so the estimator fits the *lower envelope* of the
offsets ``o = h - d`` (``h`` = arrival - ``latency_s``): one point (the smallest ``o``) per bucket of
``bucket_s`` device seconds, a least-squares line through the last ``window_s`` of points with MAD
outlier rejection (late buckets, e.g. a host stall, are dropped), and a clamp on the drift.

Three refinements of the platform.md pseudo-code, each measured in tests/test_timebase.py:

- the residuals for the MAD rule come from a Theil-Sen line (median of pairwise slopes), not from a
  first least-squares pass, which a 2 s host stall drags so far that the stall is no longer singled
  out (p99 error went from 2.5 ms to 0.17 ms for a 30 Hz stream);
- the fitted line is lowered to the ``envelope_quantile`` (0.1) of its residuals: bucket minima sit
  above the true envelope by about jitter / samples-per-bucket (0.5 ms at 10 Hz with 5 ms jitter),
  and least squares goes through their middle (worst p99 1.0 -> 0.7 ms);
- within a bucket, offsets are compared with the current drift removed, so the minimum of an
  index-clocked stream with a 3 % rate error is not simply the bucket's last sample (p99 3.8 -> 1.3 ms
  together with the quantile shift).

Resets: device time going backwards after unwrapping (the device restarted), or ``early_n`` arrivals
in a row earlier than the model allows by ``early_tol_s`` (the device clock jumped forward). A reset
forgets the fit and warms up again; the spans during which the stream was not locked are kept so
windows overlapping them can mask the modality.

Outputs are int ns on the host monotonic clock, never later than the arrival itself (events cannot
arrive before they happen) and never below the previous output + 1 ns (such clamps are counted).

Three clocks per stream (``TimebaseConfig.clock``):

- ``"device"``: the raw value is the sensor's counter (``Sample.t_device_s`` with ``tick_s = 1``, or
  raw ticks with ``tick_s`` and ``wrap_ticks`` from the table in platform.md 4.2);
- ``"index"``: the raw value is the sample index (``Sample.seq``, e.g. the MPU-6050 line index) and
  ``tick_s`` the nominal period; use ``max_drift_ppm = 50_000`` for such streams;
- ``"arrival"``: no device time at all: the arrival time minus ``latency_s``, made monotonic.
"""

import logging
import math
from collections import deque
from dataclasses import dataclass
from typing import Any, Deque, Dict, List, Optional, Tuple

import numpy as np

logger = logging.getLogger(__name__)

CLOCKS = ("device", "index", "arrival")
WARMING = "warming"
LOCKED = "locked"


class TimebaseConfigError(ValueError):
    """A timebase parameter is out of range; the message names it."""


@dataclass
class TimebaseConfig:
    """Parameters of one stream's estimator (defaults from docs/platform.md section 4.2)."""

    clock: str = "device"  # "device", "index" or "arrival" (see the module docstring)
    tick_s: float = 1.0  # seconds per raw device tick (1.0 when the raw value is already seconds)
    time_scale: float = 1.0  # device seconds per host second: 1, or the simulator's speed-up
    wrap_ticks: Optional[float] = None  # counter modulus in ticks (2**32 for a u32 us counter), or None
    latency_s: float = 0.0  # constant transport lag subtracted from every arrival
    bucket_s: float = 1.0  # one envelope point (smallest offset) per bucket of device time (/ time_scale)
    window_s: float = 60.0  # span of device time (/ time_scale) whose envelope points enter the fit
    min_points: int = 5  # envelope points needed before the drift is fitted ("warming" until then)
    max_drift_ppm: float = 2000.0  # clamp on |b|; 50 000 for index-clocked streams
    outlier_k: float = 3.0  # MAD multiple above the line beyond which an envelope point is dropped
    outlier_floor_s: float = 0.0005  # smallest rejection distance above the line
    early_tol_s: float = 0.005  # an arrival this much earlier than the model counts as early
    early_n: int = 5  # this many early arrivals in a row mean the device clock jumped
    envelope_quantile: float = 0.1  # lower the fitted line to this quantile of its residuals

    def __post_init__(self) -> None:
        if self.clock not in CLOCKS:
            raise TimebaseConfigError(f"clock must be one of {CLOCKS}, got {self.clock!r}")
        positive = {
            "tick_s": self.tick_s,
            "time_scale": self.time_scale,
            "bucket_s": self.bucket_s,
            "window_s": self.window_s,
            "max_drift_ppm": self.max_drift_ppm,
            "outlier_k": self.outlier_k,
            "early_tol_s": self.early_tol_s,
        }
        for key, value in positive.items():
            if not value > 0:
                raise TimebaseConfigError(f"{key} must be > 0, got {value}")
        if self.wrap_ticks is not None and not self.wrap_ticks > 0:
            raise TimebaseConfigError(f"wrap_ticks must be > 0 or None, got {self.wrap_ticks}")
        if not 0.0 <= self.envelope_quantile < 1.0:
            raise TimebaseConfigError(f"envelope_quantile must be in [0, 1), got {self.envelope_quantile}")
        if self.min_points < 2:
            raise TimebaseConfigError(f"min_points must be >= 2, got {self.min_points}")
        if self.early_n < 1:
            raise TimebaseConfigError(f"early_n must be >= 1, got {self.early_n}")
        if self.window_s < self.min_points * self.bucket_s:
            raise TimebaseConfigError(
                f"window_s ({self.window_s}) must hold min_points ({self.min_points}) buckets"
            )


def config_for_clock(device_clock: Any, **overrides: Any) -> TimebaseConfig:
    """A ``TimebaseConfig`` from a driver's ``DeviceClock`` (kind, tick_s, wrap_ticks, max_drift_ppm).

    ``overrides`` set any other field, e.g. ``latency_s`` calibrated for the sensor type.
    """
    fields = {
        "clock": device_clock.kind,
        "tick_s": float(device_clock.tick_s),
        "wrap_ticks": None if device_clock.wrap_ticks is None else float(device_clock.wrap_ticks),
        "max_drift_ppm": float(device_clock.max_drift_ppm),
    }
    fields.update(overrides)
    return TimebaseConfig(**fields)


@dataclass
class _Fit:
    """Current line ``o = a + b * (d - d_ref)`` in the estimator's shifted frame (seconds)."""

    a_s: float = 0.0
    b: float = 0.0
    d_ref_s: float = 0.0


class StreamTimebase:
    """Online device-clock -> host-clock mapping for one stream; call ``update`` once per sample.

    Not thread-safe for concurrent ``update`` calls (one driver thread feeds it); ``state``,
    ``counters``, ``unlocked_spans()`` and ``is_valid_over()`` may be read from other threads.

    Counters: ``resets`` (= ``resets_backward`` + ``resets_jump``), ``clamps`` (outputs raised to the
    previous + 1 ns), ``capped_at_arrival``, ``early`` (arrivals held as early), ``wraps``,
    ``outliers`` (envelope points rejected, summed over refits), ``drift_clamps``,
    ``no_device_time`` (device-clocked samples without a device time, passed through at arrival).
    """

    def __init__(self, config: Optional[TimebaseConfig] = None, name: str = "") -> None:
        self.config = config if config is not None else TimebaseConfig()
        self.name = name
        self.counters: Dict[str, int] = {
            "samples": 0,
            "resets": 0,
            "resets_backward": 0,
            "resets_jump": 0,
            "clamps": 0,
            "capped_at_arrival": 0,
            "early": 0,
            "wraps": 0,
            "outliers": 0,
            "drift_clamps": 0,
            "no_device_time": 0,
        }
        self._latency_ns = int(round(self.config.latency_s * 1e9))
        self._s_per_tick = self.config.tick_s / self.config.time_scale  # host-scale seconds per tick
        self._host_anchor_ns: Optional[int] = None
        self._last_out_ns: Optional[int] = None
        # Spans (start_ns, end_ns or None while open) during which the stream was not locked.
        self._unlocked: Deque[Tuple[int, Optional[int]]] = deque(maxlen=16)
        self.state = LOCKED if self.config.clock == "arrival" else WARMING
        self._pending_lock = False
        self._forget(keep_unwrap=False)

    # ----------------------------------------------------------------- public API

    @property
    def drift_ppm(self) -> float:
        """Host seconds per device second, minus 1, in ppm (0 while warming); a fast device < 0."""
        return self._fit.b * 1e6

    def unlocked_spans(self) -> List[Tuple[int, Optional[int]]]:
        """Recent host-ns spans when the mapping was not locked (end None: still warming)."""
        return list(self._unlocked)

    def is_valid_over(self, t_start_ns: int, t_end_ns: int) -> bool:
        """True when the stream was locked during all of [t_start_ns, t_end_ns]."""
        for start_ns, end_ns in list(self._unlocked):
            if start_ns <= t_end_ns and (end_ns is None or end_ns >= t_start_ns):
                return False
        return True

    def map_sample(self, sample: Any) -> int:
        """Map a ``drivers.Sample`` by the configured clock kind and return its host time in ns.

        ``t_device_s / tick_s`` is the raw (possibly wrapping) counter, as ``drivers.DeviceClock``
        describes it; an index-clocked sample without ``t_device_s`` uses ``seq`` as the index.
        """
        clock = self.config.clock
        if clock == "arrival":
            return self.update(None, sample.t_host_ns)
        if sample.t_device_s is None:
            raw = float(sample.seq) if clock == "index" else None
        else:
            raw = sample.t_device_s / self.config.tick_s
        return self.update(raw, sample.t_host_ns)

    def update(self, raw: Optional[float], t_arrival_ns: int) -> int:
        """Feed one sample (raw device value in ticks, or None) and return its host time in ns."""
        self.counters["samples"] += 1
        h_ns = int(t_arrival_ns) - self._latency_ns
        if self._host_anchor_ns is None:
            self._host_anchor_ns = h_ns
            if self.state == WARMING:
                self._unlocked.append((h_ns, None))
        if raw is None or self.config.clock == "arrival":
            if self.config.clock != "arrival":
                self.counters["no_device_time"] += 1
            return self._emit(h_ns, h_ns)
        h_s = (h_ns - self._host_anchor_ns) * 1e-9
        d_abs_s = self._unwrap(float(raw)) * self._s_per_tick
        if self._d_anchor_s is not None and d_abs_s < self._d_last_abs_s:
            self._reset("backward", d_abs_s, h_ns)
            d_abs_s = self._unwrap(float(raw)) * self._s_per_tick
        if self._d_anchor_s is None:
            self._d_anchor_s = d_abs_s
        d_s = d_abs_s - self._d_anchor_s
        o_s = h_s - d_s
        if self.state == LOCKED and o_s < self._model_o(d_s) - self.config.early_tol_s:
            d_s = self._on_early(d_abs_s, h_s, h_ns)
        else:
            self._held.clear()  # an early glitch that did not last: forgotten
            self._d_last_abs_s = d_abs_s
            self._accept(d_s, o_s)
        out_s = d_s + self._model_o(d_s)
        out_ns = self._host_anchor_ns + int(round(out_s * 1e9))
        return self._emit(out_ns, h_ns)

    # ----------------------------------------------------------------- internals

    def _forget(self, keep_unwrap: bool) -> None:
        """Drop every fitted point, and the unwrap state unless keep_unwrap (a forward jump)."""
        self._fit = _Fit()
        self._points: List[Tuple[float, float]] = []  # (d_s, o_min_s) per closed bucket
        self._bucket_k: Optional[int] = None
        self._bucket_min: Tuple[float, float] = (0.0, math.inf)
        self._min_o_s: Optional[float] = None
        self._held: List[Tuple[float, float]] = []  # early arrivals (d_abs_s, h_s) awaiting a verdict
        self._d_anchor_s: Optional[float] = None
        if not keep_unwrap:
            self._d_last_abs_s = -math.inf
            self._prev_raw: Optional[float] = None
            self._wraps = 0

    def _on_early(self, d_abs_s: float, h_s: float, h_ns: int) -> float:
        """Hold an early arrival; ``early_n`` in a row reset the model and replay them into it.

        Returns the sample's device time in the (possibly new) shifted frame.
        """
        self.counters["early"] += 1
        self._held.append((d_abs_s, h_s))
        if len(self._held) >= self.config.early_n:
            held = list(self._held)
            self._reset("jump", d_abs_s, h_ns)
            self._d_anchor_s = held[0][0]
            for d_held, h_held in held:
                self._d_last_abs_s = d_held
                self._accept(d_held - self._d_anchor_s, h_held - (d_held - self._d_anchor_s))
        return d_abs_s - self._d_anchor_s

    def _unwrap(self, raw: float) -> float:
        """Add the counter modulus each time the raw value falls by more than half of it."""
        wrap = self.config.wrap_ticks
        if wrap is not None and self._prev_raw is not None and raw < self._prev_raw - wrap / 2.0:
            self._wraps += 1
            self.counters["wraps"] += 1
        self._prev_raw = raw
        return raw + self._wraps * wrap if wrap is not None else raw

    def _reset(self, reason: str, d_abs_s: float, h_ns: int) -> None:
        """Forget the fit and warm up again; remember the unlocked span for the windows."""
        self.counters["resets"] += 1
        self.counters["resets_" + reason] += 1
        logger.warning("timebase %s: reset (%s) at device %.6f s", self.name or "?", reason, d_abs_s)
        self._forget(keep_unwrap=reason == "jump")
        if self.state == LOCKED:
            start_ns = self._last_out_ns if self._last_out_ns is not None else h_ns
            self._unlocked.append((start_ns, None))
        self.state = WARMING

    def _accept(self, d_s: float, o_s: float) -> None:
        """Take one on-time sample into the current bucket; close the bucket when d leaves it."""
        self._min_o_s = o_s if self._min_o_s is None else min(self._min_o_s, o_s)
        k = int(math.floor(d_s / self.config.bucket_s))
        if self._bucket_k is None:
            self._bucket_k = k
        if k > self._bucket_k:
            self._points.append(self._bucket_min)
            self._bucket_k = k
            self._bucket_min = (d_s, o_s)
            horizon_s = d_s - self.config.window_s
            self._points = [p for p in self._points if p[0] >= horizon_s]
            self._refit()
        elif o_s - self._fit.b * (d_s - self._bucket_min[0]) < self._bucket_min[1]:
            # Compare offsets with the current drift removed, so a fast drift (index-clocked
            # streams) does not make the bucket's last sample its minimum by default.
            self._bucket_min = (d_s, o_s)
        if self.state == WARMING and len(self._points) < self.config.min_points:
            self._fit = _Fit(a_s=self._min_o_s, b=0.0, d_ref_s=0.0)

    def _refit(self) -> None:
        """Least squares through the envelope points, one MAD rejection pass, drift clamp."""
        if len(self._points) < self.config.min_points:
            return
        pts = np.asarray(self._points, dtype=np.float64)
        d, o = pts[:, 0], pts[:, 1]
        d_ref = float(d.mean())
        x = d - d_ref
        a, b = _theil_sen(x, o)
        resid = o - (a + b * x)
        mad = float(np.median(np.abs(resid - np.median(resid))))
        limit_s = max(self.config.outlier_k * 1.4826 * mad, self.config.outlier_floor_s)
        keep = resid <= limit_s
        if keep.sum() < 2:
            keep = np.ones_like(keep)
        self.counters["outliers"] += int(len(keep) - keep.sum())
        a, b = _line(x[keep], o[keep])
        max_b = self.config.max_drift_ppm * 1e-6
        if abs(b) > max_b:
            self.counters["drift_clamps"] += 1
            b = math.copysign(max_b, b)
            a = float(np.mean(o[keep] - b * x[keep]))
        q = self.config.envelope_quantile
        if q > 0:
            a += float(np.quantile(o[keep] - (a + b * x[keep]), q))
        self._fit = _Fit(a_s=a, b=b, d_ref_s=d_ref)
        if self.state == WARMING:
            self.state = LOCKED
            self._pending_lock = True

    def _model_o(self, d_s: float) -> float:
        """Modelled offset at device time d_s (shifted frame)."""
        fit = self._fit
        return fit.a_s + fit.b * (d_s - fit.d_ref_s)

    def _emit(self, out_ns: int, h_ns: int) -> int:
        """Cap at the arrival, keep strictly increasing, close a warm-up span once locked."""
        if out_ns > h_ns:
            out_ns = h_ns
            self.counters["capped_at_arrival"] += 1
        if self._last_out_ns is not None and out_ns <= self._last_out_ns:
            out_ns = self._last_out_ns + 1
            self.counters["clamps"] += 1
        self._last_out_ns = out_ns
        if self._pending_lock:
            self._pending_lock = False
            if self._unlocked and self._unlocked[-1][1] is None:
                self._unlocked[-1] = (self._unlocked[-1][0], out_ns)
        return out_ns


def _line(x: np.ndarray, y: np.ndarray) -> Tuple[float, float]:
    """Least-squares intercept and slope of y ~ a + b x (x roughly centred)."""
    x_mean = float(x.mean())
    xc = x - x_mean
    denom = float(np.dot(xc, xc))
    b = float(np.dot(xc, y - y.mean()) / denom) if denom > 0 else 0.0
    a = float(y.mean()) - b * x_mean
    return a, b


def _theil_sen(x: np.ndarray, y: np.ndarray) -> Tuple[float, float]:
    """Robust line: median of pairwise slopes, then median intercept (for the outlier residuals).

    A least-squares first pass would be dragged by a host stall (envelope points seconds above the
    line) so far that the MAD rule could no longer single the stall out.
    """
    i, j = np.triu_indices(len(x), k=1)
    dx = x[j] - x[i]
    ok = dx > 0
    b = float(np.median((y[j] - y[i])[ok] / dx[ok])) if ok.any() else 0.0
    a = float(np.median(y - b * x))
    return a, b

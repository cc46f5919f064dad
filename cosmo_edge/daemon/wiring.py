"""Ingest wiring shared by the daemon and ``benchmarks/ingest.py``: channels, rings and the cutter.

One ``StreamChannel`` per stream (a ``StreamTimebase`` built from the driver's ``DeviceClock`` plus a
preallocated ``Ring``) and one ``WindowCutter`` over them. ``speed`` is the simulator's speed-up (1 for
real sensors): every host-side duration (ring span, window, hop, delay, stale limit, timebase buckets
and fit span) is divided by it and every rate multiplied by it, so the same sensor data ends up in
the same windows at any speed.

Ring memory is known before anything is allocated (``ring_bytes``), so the daemon can log it at start.
"""

import logging
import math
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Sequence

import numpy as np

from cosmo_edge.ring import Ring
from cosmo_edge.timebase import StreamTimebase, config_for_clock
from cosmo_edge.windows import ModalitySpec, StreamChannel, WindowConfig, WindowCutter, ring_layout

logger = logging.getLogger(__name__)

RING_MARGIN_S = 1.0  # ring span beyond window + hop + delay, for a reader that runs late
_TS_BYTES = 8  # one int64 host-ns stamp per slot


@dataclass(frozen=True)
class WindowTiming:
    """Window geometry in sensor seconds (divided by ``speed`` on the host side)."""

    window_s: float = 2.0
    hop_s: float = 0.5
    delay_s: float = 0.1
    stale_s: float = 5.0
    speed: float = 1.0  # simulator speed-up; 1 for real sensors

    @property
    def ring_s(self) -> float:
        """Sensor seconds each ring holds: a window, a hop, the delay and a margin."""
        return self.window_s + self.hop_s + self.delay_s + RING_MARGIN_S

    def host_s(self, sensor_s: float) -> float:
        """A sensor-time duration on the host clock."""
        return sensor_s / self.speed


def ring_capacity(rate_hz: float, duration_s: float) -> int:
    """Samples a ring needs for ``duration_s`` at ``rate_hz`` (as ``Ring.for_duration`` rounds)."""
    return max(1, int(math.ceil(duration_s * rate_hz)))


def ring_bytes(modality: str, rate_hz: float, duration_s: float) -> int:
    """Bytes a ring of ``modality`` for ``duration_s`` at ``rate_hz`` holds (samples, stamps, spare slot)."""
    slots = ring_capacity(rate_hz, duration_s) + 1
    per_sample = int(np.prod(ring_layout(modality))) * np.dtype(np.float32).itemsize
    return slots * (per_sample + _TS_BYTES)


def make_channel(
    modality: str,
    clock: Any,
    rate_hz: float,
    timing: WindowTiming,
    timebase: Optional[Mapping[str, Any]] = None,
    latency_s: float = 0.0,
    ring_s: Optional[float] = None,
) -> StreamChannel:
    """A channel for one stream: timebase from the driver's ``clock`` plus a ring of ``ring_s`` sensor s.

    ``timebase`` holds ``TimebaseConfig`` overrides in sensor seconds (``bucket_s``, ``window_s`` are
    scaled by ``1 / speed`` here); an index-clocked driver keeps its own, wider ``max_drift_ppm``.
    """
    overrides: Dict[str, Any] = dict(timebase or {})
    if getattr(clock, "kind", "") == "index":
        overrides.pop("max_drift_ppm", None)
    speed = timing.speed
    for key in ("bucket_s", "window_s"):
        if key in overrides:
            overrides[key] = overrides[key] / speed
    overrides.setdefault("bucket_s", 1.0 / speed)
    overrides.setdefault("window_s", 60.0 / speed)
    tb_config = config_for_clock(clock, time_scale=speed, latency_s=latency_s, **overrides)
    span_s = timing.ring_s if ring_s is None else ring_s
    ring = Ring.for_duration(span_s / speed, rate_hz * speed, ring_layout(modality), name=modality)
    return StreamChannel(modality, ring, StreamTimebase(tb_config, name=modality))


def make_cutter(
    modalities: Sequence[str],
    channels: Mapping[str, StreamChannel],
    rates_hz: Mapping[str, float],
    timing: WindowTiming,
) -> WindowCutter:
    """The window cutter for the model's ``modalities`` (in its order) over ``channels``.

    A modality without a channel is cut as ``absent``; ``rates_hz`` gives nominal sensor rates.
    """
    speed = timing.speed
    specs = {
        m: ModalitySpec(rate_hz=float(rates_hz[m]) * speed, stale_s=timing.stale_s / speed)
        for m in modalities
        if m in rates_hz
    }
    config = WindowConfig(
        modalities=tuple(modalities),
        specs=specs,
        window_s=timing.window_s / speed,
        hop_s=timing.hop_s / speed,
        delay_s=timing.delay_s / speed,
    )
    return WindowCutter(config, channels)


def ring_stamps(ring: Ring, t_start_ns: int, t_end_ns: int) -> np.ndarray:
    """Stamps (int64 ns) of the samples in ``[t_start_ns, t_end_ns]``, copying no sample data."""
    seen: List[np.ndarray] = []

    def record(stamps: np.ndarray) -> np.ndarray:
        seen.append(stamps.copy())
        return np.zeros(0, dtype=np.int64)

    ring.read_range(t_start_ns, t_end_ns, pick=record)
    return seen[-1] if seen else np.zeros(0, dtype=np.int64)


def log_ring_memory(channels: Mapping[str, StreamChannel]) -> int:
    """Log each ring's size and the total; return the total in bytes."""
    total = 0
    for name, channel in channels.items():
        ring = channel.ring
        total += ring.nbytes
        logger.info(
            "ring %s: %d samples of %s float32, %.2f MiB",
            name,
            ring.capacity,
            ring.sample_shape,
            ring.nbytes / 2**20,
        )
    logger.info("rings: %.2f MiB in all (computed from the config at start)", total / 2**20)
    return total

"""Shared pieces of the label tests: windows in the daemon's shapes and a filled window buffer."""

from typing import Dict, Optional

import numpy as np

from cosmo_edge.labels import RecentWindows
from cosmo_edge.windows import Window

HOP_NS = 500_000_000
WINDOW_NS = 2_000_000_000
T0_NS = 1_000_000_000_000
LABEL_NAMES = ["walk", "sit", "Stand Up"]


def make_window(
    window_id: int, with_depth: bool = False, present: Optional[Dict[str, bool]] = None
) -> Window:
    """Window ``window_id`` of a 2 s / 0.5 s grid with seeded IMU (and depth) inputs."""
    rng = np.random.default_rng(window_id)
    inputs = {
        "imu": rng.normal(size=(120, 6)).astype(np.float32),
        "skeleton": rng.normal(size=(40, 20, 3)).astype(np.float32),
    }
    if with_depth:
        depth = np.zeros((40, 60, 80), np.float32)
        depth[:, 10:50, 30:50] = rng.uniform(1.0, 3.0, size=(40, 40, 20)).astype(np.float32)
        inputs["depth"] = depth
    flags = present or {name: True for name in inputs}
    for name, ok in flags.items():
        if not ok:
            inputs[name] = np.zeros_like(inputs[name])
    end_ns = T0_NS + window_id * HOP_NS
    counts = {name: 200 if flags[name] else 0 for name in inputs}
    reasons = {name: "ok" if flags[name] else "stale" for name in inputs}
    return Window(window_id, end_ns - WINDOW_NS, end_ns, inputs, dict(flags), counts, reasons)


def filled_buffer(count: int = 40, with_depth: bool = False) -> RecentWindows:
    """Windows 0..count-1 (window 7 has no data at all); a span takes only windows wholly inside it."""
    buffer = RecentWindows(capacity=count, min_overlap=1.0)
    for window_id in range(count):
        present = {"imu": False, "skeleton": False} if window_id == 7 else None
        if present is not None and with_depth:
            present["depth"] = False
        buffer.add(make_window(window_id, with_depth, present))
    return buffer

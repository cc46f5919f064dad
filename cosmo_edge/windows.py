"""Cut fixed-length model inputs from the stream rings: one ``Window`` every ``hop_s``.

Each modality's window ``[t - window_s, t]`` (host ns, inclusive) is read from its ring and prepared
with ``cosmo_edge.preprocess.PREPARE`` - the same code training uses - so serving sees what training
saw. A modality is marked missing (``present[m] = False``, zeros in ``inputs[m]``, the reason in
``reasons[m]``) when it is ``"absent"`` (no stream), ``"stale"`` (newest sample older than
``stale_s``), has ``"too_few"`` samples in the window, or its timebase was warming up or reset
during the window (``"timebase"``).

What a ring holds per sample (the ring layout, ``ring_layout`` / ``to_ring_sample``):

- ``imu``: (6,) float32, acc g then gyro deg/s, as the driver sends it;
- ``skeleton``: (20, 3) float32 metres;
- ``depth``: (60, 80) float32 metres, each frame area-averaged at ingest with
  ``preprocess.area_resize``. ``prepare_depth`` picks frames by nearest index and then area-averages
  each frame on its own, so reducing every frame once on arrival and calling
  ``prepare_depth(frames, depth_scale_m=1.0)`` on the window gives the same array as preparing the
  full frames, while the ring holds 19 KB per frame instead of 1.2 MB and a window copies 40 small
  frames (tests/test_windows.py checks the equality);
- ``radar``: (P_max, 4) float32 per frame, packed by the convention of ``models/radar.py``: points
  closer than ``MIN_RANGE_M`` are dropped, a frame with more than P_max (64) points keeps P_max at
  evenly spaced indices in arrival order (the points carry no SNR, so no ranking by SNR is possible),
  padding rows are exact zeros, and a point is valid iff its range is at least ``MIN_RANGE_M``. A
  window holds T_radar (20) frames chosen by ``preprocess.nearest_frame_indices``; ``masks["radar"]``
  is the (T_radar, P_max) validity mask.
"""

import logging
import math
from dataclasses import dataclass, field
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple

import numpy as np

from cosmo_edge import preprocess
from cosmo_edge.ring import Ring
from cosmo_edge.timebase import StreamTimebase

logger = logging.getLogger(__name__)

# The radar convention of models/radar.py, repeated here so the daemon does not import torch for it;
# tests/test_windows.py checks both stay equal.
RADAR_FRAMES = 20
RADAR_MAX_POINTS = 64
RADAR_POINT_FEATURES = 4
MIN_RANGE_M = 0.01

# Nominal rates used when a WindowConfig names no ModalitySpec for a modality.
DEFAULT_RATES_HZ = {"imu": 100.0, "skeleton": 30.0, "depth": 30.0, "radar": 20.0}

RING_LAYOUTS: Dict[str, Tuple[int, ...]] = {
    "imu": (6,),
    "skeleton": (preprocess.SKELETON_JOINTS, 3),
    "depth": preprocess.DEPTH_HW,
    "radar": (RADAR_MAX_POINTS, RADAR_POINT_FEATURES),
}


class WindowConfigError(ValueError):
    """A window parameter is out of range; the message names it."""


def ring_layout(modality: str) -> Tuple[int, ...]:
    """Per-sample shape a modality's ring must have (see the module docstring)."""
    try:
        return RING_LAYOUTS[modality]
    except KeyError:
        raise WindowConfigError(
            f"no ring layout for modality {modality!r}; known: {sorted(RING_LAYOUTS)}"
        ) from None


def pack_radar_points(points: np.ndarray, max_points: int = RADAR_MAX_POINTS) -> np.ndarray:
    """One radar frame's (n, 4) points -> (max_points, 4) float32 by the models/radar.py rule."""
    pts = np.asarray(points, dtype=np.float32).reshape(-1, RADAR_POINT_FEATURES)
    keep = np.sum(pts[:, 0:3] * pts[:, 0:3], axis=1) >= np.float32(MIN_RANGE_M**2)
    pts = pts[keep]
    if pts.shape[0] > max_points:
        pts = pts[np.round(np.linspace(0, pts.shape[0] - 1, max_points)).astype(np.int64)]
    out = np.zeros((max_points, RADAR_POINT_FEATURES), dtype=np.float32)
    out[: pts.shape[0]] = pts
    return out


def radar_point_mask(frames: np.ndarray) -> np.ndarray:
    """Validity (bool) of each packed point in (..., P, 4): range at least ``MIN_RANGE_M``."""
    xyz = frames[..., 0:3]
    return np.sum(xyz * xyz, axis=-1) >= np.float32(MIN_RANGE_M**2)


def to_ring_sample(modality: str, data: np.ndarray) -> np.ndarray:
    """Turn one driver sample's ``data`` into the ring layout of its modality."""
    if modality == "depth":
        frame = np.asarray(data, dtype=np.float32)
        return preprocess.area_resize(frame[None], preprocess.DEPTH_HW)[0]
    if modality == "radar":
        return pack_radar_points(data)
    return np.asarray(data, dtype=np.float32).reshape(ring_layout(modality))


@dataclass
class ModalitySpec:
    """What a window needs from one stream."""

    rate_hz: float  # nominal sample (frame) rate; sets the expected count per window
    min_fill: float = 0.8  # fraction of window_s * rate_hz samples needed to call it present
    stale_s: float = 5.0  # newest sample older than this (before the window end): stale

    def min_samples(self, window_s: float) -> int:
        """Samples a window of ``window_s`` must hold (at least 2)."""
        return max(2, int(math.ceil(self.min_fill * window_s * self.rate_hz)))


@dataclass
class WindowConfig:
    """Window geometry and the modalities the model takes, in the model's order."""

    modalities: Sequence[str] = ("imu", "skeleton")
    specs: Dict[str, ModalitySpec] = field(default_factory=dict)  # per modality; defaults below
    window_s: float = 2.0  # window length
    hop_s: float = 0.5  # one window per hop
    delay_s: float = 0.1  # windows end this long before "now", so samples still in flight land
    radar_frames: int = RADAR_FRAMES  # T_radar

    def __post_init__(self) -> None:
        for key in ("window_s", "hop_s"):
            if not getattr(self, key) > 0:
                raise WindowConfigError(f"{key} must be > 0, got {getattr(self, key)}")
        if self.delay_s < 0:
            raise WindowConfigError(f"delay_s must be >= 0, got {self.delay_s}")
        self.specs = dict(self.specs)
        for name in self.modalities:
            ring_layout(name)
            self.specs.setdefault(name, ModalitySpec(rate_hz=DEFAULT_RATES_HZ[name]))


@dataclass
class Window:
    """One cut of every modality: prepared inputs plus what was missing and why."""

    window_id: int  # monotonic counter from 0
    t_start_ns: int
    t_end_ns: int
    inputs: Dict[str, np.ndarray]  # modality -> prepared float32 array (zeros when missing)
    present: Dict[str, bool]
    counts: Dict[str, int]  # samples of each modality inside the window
    reasons: Dict[str, str]  # "ok", "absent", "stale", "too_few" or "timebase"
    masks: Dict[str, np.ndarray] = field(default_factory=dict)  # "radar": (T_radar, P_max) bool

    def present_vector(self, order: Sequence[str]) -> np.ndarray:
        """(M,) float32 presence in ``order`` (the classifier's encoder order)."""
        return np.array([1.0 if self.present.get(m, False) else 0.0 for m in order], dtype=np.float32)


@dataclass
class StreamChannel:
    """One stream's path into its ring: timebase mapping, ring layout, write."""

    modality: str
    ring: Ring
    timebase: Optional[StreamTimebase] = None

    def push(self, sample: Any) -> bool:
        """Stamp a ``drivers.Sample`` on the host clock and store it; False if the ring refused it."""
        t_ns = self.timebase.map_sample(sample) if self.timebase is not None else int(sample.t_host_ns)
        return self.ring.write(t_ns, to_ring_sample(self.modality, sample.data))


class WindowCutter:
    """Cuts ``Window`` records from the channels' rings on the host clock.

    Call ``poll(now_ns)`` from the inference loop: it returns the newest due window (skipping, and
    counting, hops that were missed while the caller was busy) or None. ``cut(t_end_ns)`` cuts one
    window at an explicit end time.
    """

    def __init__(self, config: WindowConfig, channels: Mapping[str, StreamChannel]) -> None:
        self.config = config
        self.channels = dict(channels)
        for name, channel in self.channels.items():
            if name in config.modalities and channel.ring.sample_shape != ring_layout(name):
                raise WindowConfigError(
                    f"ring for {name} holds {channel.ring.sample_shape}, expected {ring_layout(name)}"
                )
        self._window_ns = int(round(config.window_s * 1e9))
        self._hop_ns = int(round(config.hop_s * 1e9))
        self._delay_ns = int(round(config.delay_s * 1e9))
        self._next_end_ns: Optional[int] = None
        self._next_id = 0
        self.counters: Dict[str, int] = {"windows": 0, "skipped_hops": 0}

    def input_shape(self, modality: str) -> Tuple[int, ...]:
        """Shape of ``inputs[modality]`` in every window."""
        if modality == "radar":
            return (self.config.radar_frames, RADAR_MAX_POINTS, RADAR_POINT_FEATURES)
        return preprocess.INPUT_SHAPES[modality]

    def poll(self, now_ns: int) -> Optional[Window]:
        """The newest window whose end (on the hop grid) is at least ``delay_s`` before ``now_ns``."""
        latest_end_ns = int(now_ns) - self._delay_ns
        if self._next_end_ns is None:
            self._next_end_ns = latest_end_ns
        if latest_end_ns < self._next_end_ns:
            return None
        missed = (latest_end_ns - self._next_end_ns) // self._hop_ns
        if missed:
            self.counters["skipped_hops"] += int(missed)
        end_ns = self._next_end_ns + missed * self._hop_ns
        self._next_end_ns = end_ns + self._hop_ns
        return self.cut(end_ns)

    def cut(self, t_end_ns: int) -> Window:
        """Cut ``[t_end_ns - window_s, t_end_ns]`` from every modality the model takes."""
        t_start_ns = int(t_end_ns) - self._window_ns
        window = Window(self._next_id, t_start_ns, int(t_end_ns), {}, {}, {}, {})
        self._next_id += 1
        self.counters["windows"] += 1
        for name in self.config.modalities:
            array, count, reason = self._cut_one(name, t_start_ns, int(t_end_ns))
            ok = reason == "ok"
            window.inputs[name] = array if ok else np.zeros(self.input_shape(name), np.float32)
            window.present[name] = ok
            window.counts[name] = count
            window.reasons[name] = reason
            if name == "radar":
                window.masks[name] = radar_point_mask(window.inputs[name])
        return window

    def _cut_one(self, name: str, t_start_ns: int, t_end_ns: int) -> Tuple[Optional[np.ndarray], int, str]:
        """Prepared array (or None), sample count and reason for one modality."""
        channel = self.channels.get(name)
        if channel is None:
            return None, 0, "absent"
        spec = self.config.specs[name]
        newest_ns = channel.ring.newest_ns
        if newest_ns is None or newest_ns < t_end_ns - int(spec.stale_s * 1e9):
            return None, 0, "stale"
        length = self._frames_kept(name)
        seen = [0]  # frames in the range, recorded by the picker

        def pick(stamps: np.ndarray) -> np.ndarray:
            seen[0] = len(stamps)
            return preprocess.nearest_frame_indices(len(stamps), length)

        stamps, data = channel.ring.read_range(t_start_ns, t_end_ns, pick=pick if length else None)
        count = seen[0] if length else len(stamps)
        if count < spec.min_samples(self.config.window_s):
            return None, count, "too_few"
        if channel.timebase is not None and not channel.timebase.is_valid_over(t_start_ns, t_end_ns):
            return None, count, "timebase"
        return self._prepare(name, data), count, "ok"

    def _frames_kept(self, name: str) -> int:
        """Frames the preparation keeps for frame modalities (only those are copied), else 0."""
        if name == "depth":
            return preprocess.DEPTH_FRAMES
        if name == "radar":
            return self.config.radar_frames
        return 0

    def _prepare(self, name: str, data: np.ndarray) -> np.ndarray:
        """The training preparation of one modality's window."""
        if name == "depth":
            return preprocess.prepare_depth(data, depth_scale_m=1.0)
        if name == "radar":
            return np.ascontiguousarray(data, dtype=np.float32)
        return preprocess.PREPARE[name](data)

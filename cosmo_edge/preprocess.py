"""The one resampling and normalisation code shared by training and the daemon's live windows.

Serving must see exactly what training saw, so every path that turns raw sensor data into model
input goes through this module: the UTD-MHAD loader, the generic dataset loader and the daemon's
window cutter all call :data:`PREPARE`, and checkpoints carry :class:`Normalization` statistics.

Per-sample shapes after preparation (float32), see ``docs/datasets.md``:

- ``imu``: (120, 6), acc xyz in g then gyro xyz in deg/s, linearly resampled over the whole clip;
- ``skeleton``: (40, 20, 3), 20 joints x (x, y, z) in metres, linearly resampled;
- ``depth``: (40, 60, 80) in metres with background 0; 40 frames picked by nearest index on the
  same normalised time axis as the skeleton, each frame area-averaged down to 60 x 80.
"""

import logging
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

logger = logging.getLogger(__name__)

# Bump when any preparation below changes its output: the dataset cache is keyed on it.
PREPROCESS_VERSION = 1

IMU_STEPS = 120
SKELETON_FRAMES = 40
SKELETON_JOINTS = 20
DEPTH_FRAMES = 40
DEPTH_HW = (60, 80)

INPUT_SHAPES: Dict[str, Tuple[int, ...]] = {
    "imu": (IMU_STEPS, 6),
    "skeleton": (SKELETON_FRAMES, SKELETON_JOINTS, 3),
    "depth": (DEPTH_FRAMES,) + DEPTH_HW,
}


def resample_linear(x: np.ndarray, length: int, axis: int = 0) -> np.ndarray:
    """Resample ``x`` to ``length`` points along ``axis`` by linear interpolation.

    The time axis is normalised: input sample 0 maps to output 0 and input sample n-1 to output
    ``length - 1``, so both endpoints are kept exactly. An input of the requested length is
    returned unchanged (as a copy), and a single input sample is repeated. Floating inputs keep
    their precision (float32 stays float32); integer inputs come back as float64.
    """
    if length < 1:
        raise ValueError(f"resample_linear: length must be >= 1, got {length}")
    arr = np.asarray(x)
    out_dtype = np.result_type(arr.dtype, np.float32)
    moved = np.moveaxis(arr, axis, 0).astype(out_dtype, copy=False)
    n_in = moved.shape[0]
    if n_in == 0:
        raise ValueError("resample_linear: the input has no samples along the time axis")
    if n_in == length:
        return np.array(arr, dtype=out_dtype, copy=True)
    if n_in == 1:
        return np.moveaxis(np.repeat(moved, length, axis=0), 0, axis)
    positions = np.linspace(0.0, n_in - 1.0, length)
    lower = np.minimum(np.floor(positions).astype(np.int64), n_in - 2)
    frac = (positions - lower).astype(out_dtype).reshape((length,) + (1,) * (moved.ndim - 1))
    out = moved[lower] * (1 - frac) + moved[lower + 1] * frac
    return np.moveaxis(out, 0, axis)


def nearest_frame_indices(n_in: int, length: int) -> np.ndarray:
    """Indices of the input frames nearest to ``length`` points on the normalised time axis.

    Uses the same positions as :func:`resample_linear` (first and last frame always kept) and
    rounds half up, so the choice does not depend on NumPy's round-half-to-even.
    """
    if n_in < 1 or length < 1:
        raise ValueError(f"nearest_frame_indices: need n_in >= 1 and length >= 1, got {n_in}, {length}")
    positions = np.linspace(0.0, n_in - 1.0, length)
    return np.minimum(np.floor(positions + 0.5).astype(np.int64), n_in - 1)


def _area_weights(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) matrix whose rows average the input cells each output cell covers."""
    edges = np.linspace(0.0, n_in, n_out + 1)
    starts = np.arange(n_in, dtype=np.float64)
    overlap = np.clip(
        np.minimum(edges[1:, None], starts[None, :] + 1) - np.maximum(edges[:-1, None], starts[None, :]),
        0.0,
        None,
    )
    return overlap / overlap.sum(axis=1, keepdims=True)


def area_resize(frames: np.ndarray, out_hw: Tuple[int, int] = DEPTH_HW) -> np.ndarray:
    """Area-average ``frames`` (F, H, W) down (or up) to (F, *out_hw), like OpenCV's INTER_AREA.

    Each output pixel is the mean of the input area it covers, zeros included, so a silhouette
    edge becomes a partial value rather than jumping. Integer factors (240x320 or 480x640 to
    60x80) take a block-mean fast path that gives the same result as the general weights.
    """
    f_count, height, width = frames.shape
    out_h, out_w = out_hw
    if (height, width) == (out_h, out_w):
        return frames.copy()
    if height % out_h == 0 and width % out_w == 0:
        blocks = frames.reshape(f_count, out_h, height // out_h, out_w, width // out_w)
        return blocks.mean(axis=(2, 4), dtype=np.float64).astype(frames.dtype)
    rows = _area_weights(height, out_h).astype(frames.dtype)
    cols = _area_weights(width, out_w).astype(frames.dtype)
    return np.matmul(np.matmul(rows, frames), cols.T)


def _check_shape(name: str, raw: np.ndarray, tail: Tuple[int, ...]) -> np.ndarray:
    """Return ``raw`` as an array, raising ValueError naming the expected (n, *tail) shape."""
    arr = np.asarray(raw)
    if arr.ndim != len(tail) + 1 or tuple(arr.shape[1:]) != tail or arr.shape[0] < 1:
        expected = ", ".join(["n"] + [str(t) for t in tail])
        raise ValueError(f"{name}: expected shape ({expected}) with n >= 1, got {arr.shape}")
    return arr


def prepare_imu(raw: np.ndarray) -> np.ndarray:
    """(n, 6) acc g + gyro deg/s samples of a clip or live window -> (120, 6) float32."""
    arr = _check_shape("prepare_imu", raw, (6,))
    return resample_linear(arr.astype(np.float64), IMU_STEPS, axis=0).astype(np.float32)


def prepare_skeleton(raw: np.ndarray) -> np.ndarray:
    """(F, 20, 3) joint positions in metres -> (40, 20, 3) float32, linear per joint and axis."""
    arr = _check_shape("prepare_skeleton", raw, (SKELETON_JOINTS, 3))
    return resample_linear(arr.astype(np.float64), SKELETON_FRAMES, axis=0).astype(np.float32)


def prepare_depth(frames_mm: np.ndarray, depth_scale_m: float = 0.001) -> np.ndarray:
    """(F, H, W) raw depth frames -> (40, 60, 80) float32 metres with background 0.

    ``depth_scale_m`` converts one raw unit to metres (0.001 for millimetre frames such as
    UTD-MHAD's and RealSense's default; 1.0 for frames already in metres). Frames are chosen by
    nearest index (blending would smear the silhouette into the zero background) before resizing,
    so only 40 frames are ever resized.
    """
    arr = np.asarray(frames_mm)
    if arr.ndim != 3 or arr.shape[0] < 1:
        raise ValueError(f"prepare_depth: expected shape (F, H, W) with F >= 1, got {arr.shape}")
    picked = arr[nearest_frame_indices(arr.shape[0], DEPTH_FRAMES)].astype(np.float32)
    if depth_scale_m != 1.0:
        picked *= np.float32(depth_scale_m)
    return area_resize(picked, DEPTH_HW).astype(np.float32, copy=False)


PREPARE: Dict[str, Callable[..., np.ndarray]] = {
    "imu": prepare_imu,
    "skeleton": prepare_skeleton,
    "depth": prepare_depth,
}


def preprocess_signature() -> Dict[str, object]:
    """What the prepared arrays depend on; the dataset cache key hashes this."""
    return {
        "version": PREPROCESS_VERSION,
        "input_shapes": {name: list(shape) for name, shape in sorted(INPUT_SHAPES.items())},
        "imu": "linear",
        "skeleton": "linear",
        "depth": "nearest-frame+area+metres",
    }


# Modalities whose values stay as they are (depth keeps metres and its zero background).
UNNORMALISED = ("depth", "radar")
# The reference implementation's constants (cosmo-method.md section 7, ``data.norm = reference``).
REFERENCE_STATS: Dict[str, Dict[str, List[float]]] = {
    "imu": {
        "mean": [-0.32627] * 3 + [-0.86611] * 3,
        "std": [0.67615] * 3 + [113.5537] * 3,
    },
    "skeleton": {
        "mean": [-0.083856, -0.291373, 2.871107],
        "std": [0.142067, 0.472284, 0.162068],
    },
}
_MIN_STD = 1e-6


def _channel_groups(modality: str, n_channels: int) -> List[List[int]]:
    """Channels of the last axis that share one mean/std: acc and gyro axes pool for ``imu``."""
    if modality == "imu":
        if n_channels != 6:
            raise ValueError(f"Normalization: imu must have 6 channels (acc xyz, gyro xyz), got {n_channels}")
        return [[0, 1, 2], [3, 4, 5]]
    return [[c] for c in range(n_channels)]


class Normalization:
    """Per-modality z-score statistics over the last axis, fitted on training data only.

    ``imu`` pools the three accelerometer axes into one mean/std and the three gyroscope axes into
    another; ``skeleton`` (and any other modality) gets one per last-axis channel (x, y, z);
    ``depth`` and ``radar`` are passed through untouched. The statistics are plain lists so that
    :meth:`to_dict` can go into a checkpoint loaded with ``weights_only=True``.
    """

    def __init__(
        self, stats: Optional[Dict[str, Optional[Dict[str, List[float]]]]] = None, source: str = "fit"
    ) -> None:
        # modality -> {"mean": [...], "std": [...]} per last-axis channel, or None for pass-through.
        self.stats: Dict[str, Optional[Dict[str, List[float]]]] = dict(stats or {})
        self.source = source

    @classmethod
    def reference(cls, modalities: Sequence[str] = ("imu", "skeleton")) -> "Normalization":
        """The reference implementation's fixed constants (``data.norm = reference``)."""
        stats: Dict[str, Optional[Dict[str, List[float]]]] = {}
        for name in modalities:
            if name in UNNORMALISED:
                stats[name] = None
            elif name in REFERENCE_STATS:
                stats[name] = {k: list(v) for k, v in REFERENCE_STATS[name].items()}
            else:
                raise ValueError(f"Normalization.reference: no reference constants for modality {name!r}")
        return cls(stats, source="reference")

    def fit(self, inputs: Dict[str, np.ndarray]) -> "Normalization":
        """Fit on a batch of prepared training inputs (modality -> (N, ...)); returns ``self``."""
        for name, batch in inputs.items():
            if name in UNNORMALISED:
                self.stats[name] = None
                continue
            arr = np.asarray(batch, dtype=np.float64)
            flat = arr.reshape(-1, arr.shape[-1])
            mean = np.zeros(arr.shape[-1])
            std = np.ones(arr.shape[-1])
            for group in _channel_groups(name, arr.shape[-1]):
                values = flat[:, group]
                mean[group] = values.mean()
                spread = values.std()
                std[group] = spread if spread > _MIN_STD else 1.0
            self.stats[name] = {"mean": mean.tolist(), "std": std.tolist()}
            logger.debug("normalisation %s: mean %s std %s", name, mean.round(4), std.round(4))
        self.source = "fit"
        return self

    def apply(self, inputs: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
        """Return normalised float32 copies; works on a batch (N, ...) or on one sample."""
        out: Dict[str, np.ndarray] = {}
        for name, value in inputs.items():
            if name not in self.stats:
                raise KeyError(f"Normalization has no statistics for modality {name!r}: {sorted(self.stats)}")
            stat = self.stats[name]
            arr = np.asarray(value, dtype=np.float32)
            if stat is None:
                out[name] = arr.copy()
                continue
            mean = np.asarray(stat["mean"], dtype=np.float32)
            std = np.asarray(stat["std"], dtype=np.float32)
            if arr.shape[-1] != mean.shape[0]:
                raise ValueError(
                    f"Normalization: {name} has {arr.shape[-1]} channels, statistics have {mean.shape[0]}"
                )
            out[name] = (arr - mean) / std
        return out

    def to_dict(self) -> Dict[str, object]:
        """Plain JSON-able form for checkpoints."""
        stats = {
            name: None if stat is None else {"mean": list(stat["mean"]), "std": list(stat["std"])}
            for name, stat in self.stats.items()
        }
        return {"kind": "zscore", "version": 1, "source": self.source, "stats": stats}

    @classmethod
    def from_dict(cls, data: Dict[str, object]) -> "Normalization":
        """Inverse of :meth:`to_dict`; raises ValueError on anything else."""
        if (
            not isinstance(data, dict)
            or data.get("kind") != "zscore"
            or not isinstance(data.get("stats"), dict)
        ):
            raise ValueError("Normalization.from_dict: expected {'kind': 'zscore', 'stats': {...}}")
        stats: Dict[str, Optional[Dict[str, List[float]]]] = {}
        for name, stat in data["stats"].items():  # type: ignore[union-attr]
            if stat is None:
                stats[name] = None
                continue
            if not isinstance(stat, dict) or len(stat.get("mean", [])) != len(stat.get("std", [])):
                raise ValueError(f"Normalization.from_dict: bad statistics for {name!r}")
            stats[name] = {"mean": [float(v) for v in stat["mean"]], "std": [float(v) for v in stat["std"]]}
        return cls(stats, source=str(data.get("source", "fit")))

    def __repr__(self) -> str:
        return f"Normalization(source={self.source!r}, modalities={sorted(self.stats)})"

"""Plain records of the label store and the array codec its blobs use (raw bytes, never pickle)."""

import json
import logging
import zlib
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

logger = logging.getLogger(__name__)

COMPRESS_MIN_BYTES = 16384  # arrays this large (depth, radar) are zlib-compressed (level 1)


class ArrayCodecError(ValueError):
    """A stored array blob cannot be decoded (unknown codec, size does not match dtype and shape)."""


@dataclass(frozen=True)
class LabelMessage:
    """One accepted label request, as the store records it."""

    message_id: str
    activity: str  # canonical class name
    session: str  # the daemon run whose window ids these are
    t_start_ns: Optional[int] = None  # the span asked for (host monotonic ns), or None
    t_end_ns: Optional[int] = None
    requested_window_ids: Optional[Sequence[int]] = None  # the ids asked for, or None


@dataclass
class AddResult:
    """What ``LabelStore.add_label`` did."""

    duplicate: bool  # nothing new was written
    stored: int  # windows newly written
    window_ids: List[int]  # every window of the message, in request order
    activity: str


@dataclass
class LabeledWindow:
    """One stored window; ``inputs`` is filled only by ``LabelStore.iter_windows``."""

    row_id: int
    session: str
    window_id: int
    t_start_ns: int
    t_end_ns: int
    activity: str
    message_id: str
    received_unix_ns: int
    present: Dict[str, bool] = field(default_factory=dict)
    inputs: Dict[str, np.ndarray] = field(default_factory=dict)


def encode_array(array: np.ndarray) -> Tuple[str, str, str, bytes]:
    """(dtype, shape JSON, codec, bytes) of a numeric array."""
    arr = np.ascontiguousarray(array)
    if arr.dtype.hasobject or arr.dtype.kind not in "biuf":
        raise ArrayCodecError(f"cannot store arrays of dtype {arr.dtype}")
    raw = arr.tobytes()
    shape = json.dumps(list(arr.shape))
    if len(raw) >= COMPRESS_MIN_BYTES:
        return arr.dtype.str, shape, "zlib", zlib.compress(raw, 1)
    return arr.dtype.str, shape, "raw", raw


def decode_array(dtype: str, shape: str, codec: str, data: bytes) -> np.ndarray:
    """Inverse of :func:`encode_array` (a writable copy)."""
    if codec not in ("raw", "zlib"):
        raise ArrayCodecError(f"unknown array codec {codec!r}")
    raw = zlib.decompress(data) if codec == "zlib" else bytes(data)
    dims = [int(d) for d in json.loads(shape)]
    kind = np.dtype(dtype)
    if kind.hasobject or len(raw) != kind.itemsize * int(np.prod(dims)):
        raise ArrayCodecError(f"blob of {len(raw)} bytes does not hold {dtype} {dims}")
    return np.frombuffer(raw, dtype=kind).reshape(dims).copy()


def stack_windows(
    windows: Sequence[LabeledWindow], label_names: Sequence[str], modalities: Sequence[str]
) -> Tuple[Dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """(inputs modality -> (N, ...), labels (N,) int64, present (N, M) float32) for training.

    Windows whose activity is not in ``label_names`` or that lack one of ``modalities`` are skipped
    (and logged), so a store written for another class list never feeds wrong indices.
    """
    index = {name: i for i, name in enumerate(label_names)}
    kept = [w for w in windows if w.activity in index and all(m in w.inputs for m in modalities)]
    if len(kept) < len(windows):
        logger.warning(
            "skipping %d labeled windows of another class or modality set", len(windows) - len(kept)
        )
    inputs = {m: np.stack([w.inputs[m] for w in kept]) if kept else np.zeros((0,)) for m in modalities}
    labels = np.array([index[w.activity] for w in kept], dtype=np.int64)
    present = np.array([[float(w.present.get(m, False)) for m in modalities] for w in kept], np.float32)
    return inputs, labels, present.reshape(len(kept), len(modalities))

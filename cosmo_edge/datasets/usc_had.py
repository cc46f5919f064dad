"""USC-HAD loader: ``Subject{s}/a{a}t{t}.mat`` -> 2 s accelerometer and gyroscope windows.

Layout (cosmo-method.md section 8): 14 subjects, 12 activities, 5 trials each, one MotionNode IMU at
100 Hz. Field ``sensor_readings`` is (n, 6): acc x, y, z in g, then gyro x, y, z in deg/s. The other
fields are metadata strings, and one release file spells ``activity_number`` as ``activity_numbr``;
the label therefore comes from the file name (``a{a}`` -> label a - 1), never from the metadata
(disagreements are only logged and listed in ``ds.meta["metadata_mismatches"]``).

Each trial is cut into windows of ``window_s`` (default 2 s = 200 samples) with ``overlap``
(default 50 %, stride 100), within the trial; an incomplete tail is dropped. The two modalities are
``"acc"`` and ``"gyro"``, each (N, window_samples, 3) float32, raw units (not normalised: fit
:func:`fit_normalization` on training-pool windows). Split by subject: 1-10 training pool, 11-12
validation, 13-14 test (:func:`usc_split`), with n_c = max(1, round(r/100 * N_c)) labeled windows
per class of the pool.
"""

import logging
import pathlib
import re
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from cosmo_edge.datasets.base import DataRootError, DatasetFormatError, MultimodalDataset, PathLike
from cosmo_edge.datasets.splits import LabelSplit
from cosmo_edge.preprocess import Normalization

logger = logging.getLogger(__name__)

DATASET_NAME = "usc-had"
RATE_HZ = 100.0
NUM_ACTIVITIES = 12
LABEL_NAMES = [
    "walking forward", "walking left", "walking right", "walking upstairs", "walking downstairs",
    "running forward", "jumping up", "sitting", "standing", "sleeping", "elevator up", "elevator down",
]  # fmt: skip
MODALITIES = ("acc", "gyro")  # columns 0:3 and 3:6 of sensor_readings
POOL_SUBJECTS = tuple(range(1, 11))
VALIDATION_SUBJECTS = (11, 12)
TEST_SUBJECTS = (13, 14)
READINGS_FIELD = "sensor_readings"
ACTIVITY_FIELDS = ("activity_number", "activity_numbr")  # the second is the release's misspelling
_FILE = re.compile(r"^a(\d+)t(\d+)\.mat$")
_SUBJECT = re.compile(r"^Subject(\d+)$")
TrialKey = Tuple[int, int, int]  # (subject, activity, trial)


def scan_trials(root: PathLike) -> List[TrialKey]:
    """Sorted (subject, activity, trial) of every ``Subject{s}/a{a}t{t}.mat`` under ``root``."""
    base = pathlib.Path(root)
    keys: List[TrialKey] = []
    for folder in base.iterdir() if base.is_dir() else []:
        subject = _SUBJECT.match(folder.name)
        if not (subject and folder.is_dir()):
            continue
        for path in folder.iterdir():
            match = _FILE.match(path.name)
            if match:
                keys.append((int(subject.group(1)), int(match.group(1)), int(match.group(2))))
    if not keys:
        raise DataRootError(f"{base}: expected Subject<s>/a<a>t<t>.mat files of USC-HAD")
    bad = [k for k in keys if not 1 <= k[1] <= NUM_ACTIVITIES]
    if bad:
        raise DatasetFormatError(f"{base}: activities outside 1..{NUM_ACTIVITIES}: {bad[:5]}")
    return sorted(keys)


def _scalar_text(value: np.ndarray) -> str:
    """A MATLAB char/number field as loaded by scipy (nested arrays) -> stripped text."""
    flat = np.asarray(value).ravel()
    return str(flat[0]).strip() if flat.size else ""


def read_trial(path: pathlib.Path) -> Tuple[np.ndarray, Optional[str]]:
    """``sensor_readings`` as (n, 6) float64 and the metadata activity number as text (or None)."""
    from scipy.io import loadmat  # slow to import; only the loader needs it

    try:
        mat = loadmat(str(path), variable_names=[READINGS_FIELD, *ACTIVITY_FIELDS])
    except (OSError, ValueError, TypeError) as exc:
        raise DatasetFormatError(f"{path}: cannot read ({exc})") from exc
    if READINGS_FIELD not in mat:
        raise DatasetFormatError(f"{path}: no {READINGS_FIELD} field")
    readings = np.asarray(mat[READINGS_FIELD], dtype=np.float64)
    if readings.ndim != 2 or readings.shape[1] != 6:
        raise DatasetFormatError(f"{path}: {READINGS_FIELD} has shape {readings.shape}, expected (n, 6)")
    meta = next((_scalar_text(mat[f]) for f in ACTIVITY_FIELDS if f in mat), None)
    return readings, meta


def window_geometry(window_s: float, overlap: float, rate_hz: float = RATE_HZ) -> Tuple[int, int]:
    """(window_samples, stride_samples) for ``window_s`` at ``rate_hz`` with fractional ``overlap``."""
    length = int(round(window_s * rate_hz))
    stride = int(round(length * (1.0 - overlap)))
    if length < 2 or not 0.0 <= overlap < 1.0 or stride < 1:
        raise ValueError(f"window_s={window_s}, overlap={overlap}: need >= 2 samples and 0 <= overlap < 1")
    return length, stride


def cut_windows(readings: np.ndarray, length: int, stride: int) -> np.ndarray:
    """(k, length, channels) windows starting every ``stride`` samples; the incomplete tail is dropped."""
    starts = np.arange(0, readings.shape[0] - length + 1, stride)
    if not len(starts):
        return np.zeros((0, length, readings.shape[1]), readings.dtype)
    return np.stack([readings[s : s + length] for s in starts])


def load_usc_had(
    root: PathLike,
    window_s: float = 2.0,
    overlap: float = 0.5,
    subjects: Optional[Sequence[int]] = None,
) -> MultimodalDataset:
    """Load USC-HAD as windows with modalities ``acc`` and ``gyro`` (each (N, T, 3) float32).

    Args:
        root: folder holding ``Subject1/`` ... ``Subject14/``.
        window_s: window length in seconds (200 samples at 100 Hz by default).
        overlap: fraction of a window shared with the next one (0.5 -> stride of half a window).
        subjects: only these subjects (default: every subject found).
    """
    base = pathlib.Path(root)
    length, stride = window_geometry(window_s, overlap)
    keys = [k for k in scan_trials(base) if subjects is None or k[0] in set(subjects)]
    parts: List[np.ndarray] = []
    labels: List[int] = []
    subject_ids: List[int] = []
    window_ids: List[str] = []
    too_short: List[str] = []
    mismatches: List[str] = []
    for subject, activity, trial in keys:
        name = f"s{subject}_a{activity}_t{trial}"
        readings, meta_activity = read_trial(base / f"Subject{subject}" / f"a{activity}t{trial}.mat")
        if meta_activity is not None and meta_activity != str(activity):
            mismatches.append(name)
        windows = cut_windows(readings, length, stride)
        if not len(windows):
            too_short.append(name)
            continue
        parts.append(windows.astype(np.float32))
        labels += [activity - 1] * len(windows)
        subject_ids += [subject] * len(windows)
        window_ids += [f"{name}_w{i}" for i in range(len(windows))]
    if mismatches:
        logger.warning(
            "%d USC-HAD files disagree with their file name's activity: %s", len(mismatches), mismatches[:5]
        )
    if too_short:
        logger.warning("%d USC-HAD trials shorter than one window: %s", len(too_short), too_short[:5])
    stacked = np.concatenate(parts) if parts else np.zeros((0, length, 6), np.float32)
    logger.info(
        "USC-HAD: %d trials -> %d windows of %d samples (stride %d)", len(keys), len(stacked), length, stride
    )
    meta: Dict[str, object] = {
        "source": DATASET_NAME,
        "rates_hz": {m: RATE_HZ for m in MODALITIES},
        "window_s": window_s,
        "overlap": overlap,
        "window_samples": length,
        "stride_samples": stride,
        "num_trials": len(keys),
        "too_short_trials": too_short,
        "metadata_mismatches": mismatches,
    }
    return MultimodalDataset(
        inputs={
            "acc": np.ascontiguousarray(stacked[..., 0:3]),
            "gyro": np.ascontiguousarray(stacked[..., 3:6]),
        },
        labels=np.array(labels, dtype=np.int64),
        subjects=np.array(subject_ids, dtype=np.int64),
        trial_ids=window_ids,
        label_names=list(LABEL_NAMES),
        meta=meta,
    )


def labeled_count(rate_percent: float, class_windows: int) -> int:
    """n_c = max(1, round(r/100 * N_c)), rounding half up (independent of NumPy's half-to-even)."""
    return max(1, int(np.floor(rate_percent / 100.0 * class_windows + 0.5)))


def usc_split(
    ds: MultimodalDataset,
    rate_percent: float,
    seed: int,
    pool_subjects: Sequence[int] = POOL_SUBJECTS,
    validation_subjects: Sequence[int] = VALIDATION_SUBJECTS,
    test_subjects: Sequence[int] = TEST_SUBJECTS,
) -> Tuple[LabelSplit, np.ndarray]:
    """(LabelSplit of the pool with validation = validation subjects, test indices); seeded, stratified.

    Per class c of the pool, ``labeled_count(rate_percent, N_c)`` windows are labeled and the rest
    of the pool is unlabeled (stage 1 data).
    """
    groups = [set(pool_subjects), set(validation_subjects), set(test_subjects)]
    if groups[0] & groups[1] or groups[0] & groups[2] or groups[1] & groups[2]:
        raise ValueError("usc_split: pool, validation and test subjects must not overlap")
    pool, validation, test = (np.flatnonzero(np.isin(ds.subjects, sorted(g))) for g in groups)
    rng = np.random.default_rng(seed)
    labeled: List[np.ndarray] = []
    for label in range(ds.num_classes):
        members = pool[ds.labels[pool] == label]
        if len(members):
            labeled.append(rng.permutation(members)[: labeled_count(rate_percent, len(members))])
    labeled_idx = np.sort(np.concatenate(labeled)) if labeled else np.zeros(0, np.int64)
    split = LabelSplit(
        labeled=labeled_idx.astype(np.int64),
        unlabeled=np.setdiff1d(pool, labeled_idx).astype(np.int64),
        validation=validation.astype(np.int64),
    )
    logger.info(
        "USC-HAD %s%% (seed %d): %d labeled, %d unlabeled, %d validation, %d test windows",
        rate_percent,
        seed,
        len(split.labeled),
        len(split.unlabeled),
        len(split.validation),
        len(test),
    )
    return split, test.astype(np.int64)


def fit_normalization(ds: MultimodalDataset, index: Sequence[int]) -> Normalization:
    """Per-channel z-score from the windows at ``index`` (the training pool).

    ``Normalization`` pools channels only for the modality named ``imu``; ``acc`` and ``gyro`` get
    one mean and std per axis, which is USC-HAD's per-channel protocol.
    """
    idx = np.asarray(index, dtype=np.int64)
    return Normalization().fit({name: arr[idx] for name, arr in ds.inputs.items()})

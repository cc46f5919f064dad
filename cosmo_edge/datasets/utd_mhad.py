"""UTD-MHAD loader: Inertial, Skeleton and Depth ``.mat`` files -> prepared MultimodalDataset.

Layout (see the dataset's SOURCE.md and cosmo-method.md section 7): ``Inertial/aA_sS_tT_inertial.mat``
(``d_iner`` (n, 6), 50 Hz), ``Skeleton/aA_sS_tT_skeleton.mat`` (``d_skel`` (20, 3, F), 30 Hz) and
``Depth/aA_sS_tT_depth.mat`` (``d_depth`` (240, 320, F) uint16 mm, 30 Hz). The loader works from
the files present: a trial is used when every requested modality has its file, and trials absent
from the 27 x 8 x 4 grid are reported (the release lacks a8_s1_t4, a23_s6_t4 and a27_s8_t4).
Labels are 0-based (action A -> A - 1).
"""

import logging
import pathlib
import re
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from cosmo_edge.datasets.base import DataRootError, DatasetFormatError, MultimodalDataset, PathLike
from cosmo_edge.datasets.cache import file_fingerprint, load_or_build
from cosmo_edge.datasets.npz_format import GenericRecording, StackBuilder
from cosmo_edge.preprocess import PREPARE

logger = logging.getLogger(__name__)

DATASET_NAME = "utd-mhad"
NUM_ACTIONS, NUM_SUBJECTS, NUM_TRIALS = 27, 8, 4
KNOWN_ABSENT = ("a8_s1_t4", "a23_s6_t4", "a27_s8_t4")
LABEL_NAMES = [
    "swipe left", "swipe right", "wave", "clap", "throw", "arm cross", "basketball shoot", "draw X",
    "draw circle (clockwise)", "draw circle (counter-clockwise)", "draw triangle", "bowling", "boxing",
    "baseball swing", "tennis swing", "arm curl", "tennis serve", "push", "knock", "catch",
    "pickup and throw", "jog", "walk", "sit to stand", "stand to sit", "lunge", "squat",
]  # fmt: skip
# modality -> (folder, file suffix, MATLAB variable, nominal rate in Hz)
SOURCES: Dict[str, Tuple[str, str, str, float]] = {
    "imu": ("Inertial", "inertial", "d_iner", 50.0),
    "skeleton": ("Skeleton", "skeleton", "d_skel", 30.0),
    "depth": ("Depth", "depth", "d_depth", 30.0),
}
DEPTH_SCALE_M = 0.001  # d_depth is in millimetres
_NAME = re.compile(r"^a(\d+)_s(\d+)_t(\d+)_([a-z]+)\.mat$")
TrialKey = Tuple[int, int, int]


def trial_id(key: TrialKey) -> str:
    """(action, subject, trial) -> ``"aA_sS_tT"``."""
    return "a{}_s{}_t{}".format(*key)


def trial_path(root: pathlib.Path, key: TrialKey, modality: str) -> pathlib.Path:
    """Path of one trial's file for one modality."""
    folder, suffix, _, _ = SOURCES[modality]
    return root / folder / f"{trial_id(key)}_{suffix}.mat"


def scan_trials(root: PathLike, modalities: Sequence[str]) -> Tuple[List[TrialKey], List[str]]:
    """Trials that have a file for every requested modality, and the ids of absent grid trials.

    Raises DataRootError (one line) when a needed folder is missing or holds no ``.mat`` files.
    """
    base = pathlib.Path(root)
    per_modality: Dict[str, set] = {}
    for mod in modalities:
        if mod not in SOURCES:
            raise ValueError(f"UTD-MHAD has modalities {sorted(SOURCES)}, not {mod!r}")
        folder, suffix, _, _ = SOURCES[mod]
        keys = set()
        if (base / folder).is_dir():
            for path in (base / folder).iterdir():
                match = _NAME.match(path.name)
                if match and match.group(4) == suffix:
                    keys.add(tuple(int(g) for g in match.groups()[:3]))
        if not keys:
            raise DataRootError(
                f"{base}: expected {folder}/ folder of UTD-MHAD .mat files (for modality {mod})"
            )
        per_modality[mod] = keys
    common = set.intersection(*per_modality.values())
    for mod, keys in per_modality.items():
        extra = sorted(keys - common)
        if extra:
            logger.warning(
                "%d %s trials lack another modality and are skipped: %s", len(extra), mod, extra[:5]
            )
    outside = sorted(k for k in common if not (1 <= k[0] <= NUM_ACTIONS))
    if outside:
        raise DatasetFormatError(
            f"{base}: actions outside 1..{NUM_ACTIONS}: {[trial_id(k) for k in outside[:5]]}"
        )
    grid = {
        (a, s, t)
        for a in range(1, NUM_ACTIONS + 1)
        for s in range(1, NUM_SUBJECTS + 1)
        for t in range(1, NUM_TRIALS + 1)
    }
    absent = [trial_id(k) for k in sorted(grid - common)]
    unexpected = [t for t in absent if t not in KNOWN_ABSENT]
    if unexpected:
        logger.warning(
            "%d UTD-MHAD trials absent beyond the known three: %s", len(unexpected), unexpected[:10]
        )
    logger.info("UTD-MHAD: %d trials with %s; absent: %s", len(common), ", ".join(modalities), absent)
    return sorted(common), absent


def read_raw(root: PathLike, key: TrialKey, modality: str) -> np.ndarray:
    """One trial's raw array in time-first layout: imu (n, 6), skeleton (F, 20, 3), depth (F, 240, 320)."""
    from scipy.io import loadmat  # scipy.io is slow to import; only the loader needs it

    path = trial_path(pathlib.Path(root), key, modality)
    variable = SOURCES[modality][2]
    try:
        arr = loadmat(str(path), variable_names=[variable])[variable]
    except (OSError, KeyError, ValueError, TypeError) as exc:
        raise DatasetFormatError(f"{path}: cannot read {variable} ({exc})") from exc
    expected_ndim = 2 if modality == "imu" else 3
    if arr.ndim != expected_ndim or (modality == "imu" and arr.shape[1] != 6):
        raise DatasetFormatError(f"{path}: unexpected {variable} shape {arr.shape}")
    if modality != "imu":
        arr = np.transpose(arr, (2, 0, 1))  # (20, 3, F) / (240, 320, F) -> frames first
    return np.ascontiguousarray(arr)


def prepare_raw(modality: str, raw: np.ndarray) -> np.ndarray:
    """The shared preparation with UTD-MHAD's units (depth in millimetres)."""
    if modality == "depth":
        return PREPARE["depth"](raw, depth_scale_m=DEPTH_SCALE_M)
    return PREPARE[modality](raw)


def iter_raw_recordings(root: PathLike, modalities: Sequence[str]) -> Iterator[GenericRecording]:
    """Raw recordings (time-first, original units) one at a time, e.g. for the generic converter."""
    keys, _ = scan_trials(root, modalities)
    for key in keys:
        yield GenericRecording(
            recording_id=trial_id(key),
            subject=key[1],
            label=key[0] - 1,
            arrays={m: read_raw(root, key, m) for m in modalities},
            rates_hz={m: SOURCES[m][3] for m in modalities},
        )


def _build(root: pathlib.Path, modalities: List[str]) -> MultimodalDataset:
    """Read and prepare every present trial (no cache)."""
    keys, absent = scan_trials(root, modalities)
    stacker = StackBuilder(len(keys))
    for row, key in enumerate(keys):
        for mod in modalities:
            stacker.put(mod, row, prepare_raw(mod, read_raw(root, key, mod)))
    return MultimodalDataset(
        inputs={m: stacker.arrays[m] for m in modalities},
        labels=np.array([k[0] - 1 for k in keys]),
        subjects=np.array([k[1] for k in keys]),
        trial_ids=[trial_id(k) for k in keys],
        label_names=list(LABEL_NAMES),
        meta={
            "source": DATASET_NAME,
            "absent_trials": absent,
            "rates_hz": {m: SOURCES[m][3] for m in modalities},
        },
    )


def load_utd_mhad(
    root: PathLike,
    modalities: Sequence[str] = ("imu", "skeleton"),
    cache_dir: Optional[PathLike] = None,
    use_cache: bool = True,
) -> MultimodalDataset:
    """Load UTD-MHAD prepared to the shared input shapes (not normalised).

    Args:
        root: folder holding ``Inertial/``, ``Skeleton/`` and/or ``Depth/`` (see
            :func:`cosmo_edge.datasets.resolve_data_root`).
        modalities: any of ``imu``, ``skeleton``, ``depth``, in the order wanted.
        cache_dir: cache root (default ``$COSMO_CACHE`` or ``~/.cache/cosmo-edge``).
        use_cache: False reads and prepares the ``.mat`` files every time.
    """
    base = pathlib.Path(root)
    wanted = list(modalities)
    if not wanted:
        raise ValueError("load_utd_mhad: no modalities requested")
    if not use_cache:
        return _build(base, wanted)
    # The fingerprint covers every modality folder, so one entry can grow to hold them all.
    present = [m for m in SOURCES if (base / SOURCES[m][0]).is_dir()]
    scan_trials(base, wanted)  # fail early, with one line, on a wrong root
    paths = [p for m in present for p in (base / SOURCES[m][0]).glob("*.mat")]
    fingerprint = file_fingerprint(paths, base)
    return load_or_build(DATASET_NAME, fingerprint, wanted, lambda mods: _build(base, mods), cache_dir)

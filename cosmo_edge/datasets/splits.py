"""Cross-subject and label-rate splits (cosmo-method.md section 7).

Per class of the training pool, with a nominal ``per_class_nominal`` (20) training trials:

- validation: the trials beyond the nominal count (UTD-MHAD: 4 per class, 3 for actions 8 and 23,
  106 in all), drawn with ``validation_seed`` so the split is the same at every rate and seed;
- labeled: ``round(rate_percent / 100 * per_class_nominal)`` trials (r/5 for 20), drawn with
  ``seed`` from the rest;
- unlabeled: the remaining ``per_class_nominal - labeled`` trials of that class.

For one seed the labeled sets are nested across rates (the 5 % set is inside the 10 % set), since
the same per-class permutation is cut at a different place.
"""

import logging
from dataclasses import dataclass
from typing import Dict, List, Sequence, Tuple

import numpy as np

from cosmo_edge.datasets.base import MultimodalDataset

logger = logging.getLogger(__name__)

LABEL_RATES_PERCENT = (5, 10, 15, 20, 30, 40)


@dataclass(frozen=True)
class LabelSplit:
    """Index arrays (sorted, int64, into the dataset) of one label-rate draw."""

    labeled: np.ndarray
    unlabeled: np.ndarray
    validation: np.ndarray

    def trial_ids(self, ds: MultimodalDataset) -> Dict[str, List[str]]:
        """The trial ids of each part, to write into a run's output."""
        return {
            "labeled": [ds.trial_ids[i] for i in self.labeled],
            "unlabeled": [ds.trial_ids[i] for i in self.unlabeled],
            "validation": [ds.trial_ids[i] for i in self.validation],
        }


def cross_subject_split(
    ds: MultimodalDataset, train_subjects: Sequence[int], test_subjects: Sequence[int]
) -> Tuple[np.ndarray, np.ndarray]:
    """(train_pool_idx, test_idx): the trials of ``train_subjects`` and of ``test_subjects``."""
    overlap = set(train_subjects) & set(test_subjects)
    if overlap:
        raise ValueError(f"cross_subject_split: subjects {sorted(overlap)} are in both train and test")
    present = set(ds.subjects.tolist())
    absent = sorted((set(train_subjects) | set(test_subjects)) - present)
    if absent:
        raise ValueError(
            f"cross_subject_split: subjects {absent} not in the dataset (have {sorted(present)})"
        )
    pool = np.flatnonzero(np.isin(ds.subjects, list(train_subjects)))
    test = np.flatnonzero(np.isin(ds.subjects, list(test_subjects)))
    logger.info("cross-subject split: %d training-pool trials, %d test trials", len(pool), len(test))
    return pool.astype(np.int64), test.astype(np.int64)


def labeled_per_class(rate_percent: float, per_class_nominal: int = 20) -> int:
    """Labeled trials per class at ``rate_percent`` of the nominal count (must come out whole)."""
    exact = rate_percent / 100.0 * per_class_nominal
    count = int(round(exact))
    if abs(exact - count) > 1e-9 or not 0 < count <= per_class_nominal:
        raise ValueError(
            f"label rate {rate_percent}% of {per_class_nominal} trials per class is not a whole count >= 1"
        )
    return count


def label_rate_split(
    ds: MultimodalDataset,
    pool_idx: Sequence[int],
    rate_percent: float,
    seed: int,
    per_class_nominal: int = 20,
    validation_seed: int = 0,
) -> LabelSplit:
    """Seeded, stratified labeled / unlabeled / validation split of the training pool."""
    pool = np.asarray(pool_idx, dtype=np.int64)
    if len(np.unique(pool)) != len(pool):
        raise ValueError("label_rate_split: pool_idx has duplicates")
    n_labeled = labeled_per_class(rate_percent, per_class_nominal)
    pool_labels = ds.labels[pool]
    val_rng = np.random.default_rng(validation_seed)
    label_rng = np.random.default_rng(seed)
    labeled: List[np.ndarray] = []
    unlabeled: List[np.ndarray] = []
    validation: List[np.ndarray] = []
    for label in range(ds.num_classes):
        members = np.sort(pool[pool_labels == label])
        n_val = max(0, len(members) - per_class_nominal)
        shuffled = val_rng.permutation(members)
        validation.append(shuffled[:n_val])
        rest = label_rng.permutation(np.sort(shuffled[n_val:]))
        if len(rest) < n_labeled:
            raise ValueError(
                f"label_rate_split: class {label} ({ds.label_names[label]}) has {len(rest)} training "
                f"trials, fewer than {n_labeled} labeled"
            )
        if len(rest) < per_class_nominal:
            logger.warning(
                "class %d (%s): %d training trials, nominal %d; unlabeled set gets %d",
                label,
                ds.label_names[label],
                len(rest),
                per_class_nominal,
                len(rest) - n_labeled,
            )
        labeled.append(rest[:n_labeled])
        unlabeled.append(rest[n_labeled:])
    split = LabelSplit(
        labeled=np.sort(np.concatenate(labeled)).astype(np.int64),
        unlabeled=np.sort(np.concatenate(unlabeled)).astype(np.int64),
        validation=np.sort(np.concatenate(validation)).astype(np.int64),
    )
    logger.info(
        "label rate %s%% (seed %d): %d labeled, %d unlabeled, %d validation",
        rate_percent,
        seed,
        len(split.labeled),
        len(split.unlabeled),
        len(split.validation),
    )
    return split

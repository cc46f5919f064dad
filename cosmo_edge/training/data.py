"""Turn a dataset config into normalised tensors per split (cosmo-method.md section 7 protocol).

Splits: ``labeled`` (stage 2 and the supervised baseline), ``unlabeled`` (stage 1 only; labels are
kept for bookkeeping but never passed to stage 1), ``validation`` and ``test``. The z-score
statistics are fitted on the training pool (training subjects) only and travel with the checkpoints.
"""

import logging
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from cosmo_edge.datasets import (
    MultimodalDataset,
    cross_subject_split,
    label_rate_split,
    make_synthetic_dataset,
)
from cosmo_edge.preprocess import Normalization
from cosmo_edge.training.config import DataConfig

logger = logging.getLogger(__name__)

DATASETS = ("utd-mhad", "synthetic")
SPLITS = ("labeled", "unlabeled", "validation", "test")
# Generated data for tests and the demo: 6 classes, subjects 1-3 train, 4-5 test, 8 trials per
# (subject, class) so that a nominal 20 training trials per class leave 4 for validation.
SYNTHETIC_SHAPE = {"num_classes": 6, "num_subjects": 5, "trials_per_subject_class": 8}
SYNTHETIC_SUBJECTS = ([1, 2, 3], [4, 5])
UTD_SUBJECTS = ([1, 2, 3, 4, 5, 6], [7, 8])
Split = Tuple[Dict[str, torch.Tensor], torch.Tensor]


@dataclass
class ExperimentData:
    """Normalised tensors per split plus everything a checkpoint needs to reproduce the inputs."""

    splits: Dict[str, Split]
    label_names: List[str]
    input_shapes: Dict[str, Tuple[int, ...]]
    normalization: Normalization
    split_ids: Dict[str, List[str]]
    subjects: Dict[str, np.ndarray]  # subject id per row of each split (metadata, not labels)

    @property
    def num_classes(self) -> int:
        return len(self.label_names)

    @property
    def modalities(self) -> List[str]:
        return list(self.input_shapes)


def load_dataset(config: DataConfig, seed: int = 0) -> MultimodalDataset:
    """Load ``config.dataset`` with ``config.modalities`` (UTD-MHAD from --data-root / $COSMO_DATA)."""
    if config.dataset == "synthetic":
        return make_synthetic_dataset(
            modalities=tuple(config.modalities),
            seed=seed,
            noise_std=config.synthetic_noise_std,
            **SYNTHETIC_SHAPE,
        )
    if config.dataset == "utd-mhad":
        from cosmo_edge.datasets import load_utd_mhad, resolve_data_root

        root = resolve_data_root(config.data_root)
        return load_utd_mhad(root, modalities=tuple(config.modalities), cache_dir=config.cache_dir)
    raise ValueError(f"dataset must be one of {DATASETS}, got {config.dataset!r}")


def default_subjects(config: DataConfig) -> Tuple[Sequence[int], Sequence[int]]:
    """The configured subjects, or the dataset's standard split when the config leaves them empty."""
    standard = SYNTHETIC_SUBJECTS if config.dataset == "synthetic" else UTD_SUBJECTS
    train = config.train_subjects or standard[0]
    test = config.test_subjects or standard[1]
    return train, test


def to_tensors(inputs: Dict[str, np.ndarray], labels: np.ndarray) -> Split:
    """float32 / int64 torch tensors (sharing memory with contiguous numpy arrays)."""
    tensors = {m: torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)) for m, x in inputs.items()}
    return tensors, torch.from_numpy(np.asarray(labels, dtype=np.int64))


def experiment_from_indices(
    ds: MultimodalDataset, indices: Dict[str, np.ndarray], normalization: Normalization
) -> ExperimentData:
    """Normalised tensors, trial ids and subjects for each named split of rows of ``ds``."""
    splits: Dict[str, Split] = {}
    for name, rows in indices.items():
        part = ds.subset(rows)
        splits[name] = to_tensors(normalization.apply(part.inputs), part.labels)
    return ExperimentData(
        splits=splits,
        label_names=list(ds.label_names),
        input_shapes={m: tuple(s) for m, s in ds.input_shapes().items()},
        normalization=normalization,
        split_ids={name: [ds.trial_ids[i] for i in rows] for name, rows in indices.items()},
        subjects={name: ds.subjects[rows] for name, rows in indices.items()},
    )


def prepare_experiment(
    ds: MultimodalDataset, config: DataConfig, seed: int, normalization: Optional[Normalization] = None
) -> ExperimentData:
    """Cross-subject split, seeded label-rate split, normalisation fitted on the training pool."""
    ds = ds.select_modalities(config.modalities)
    train_subjects, test_subjects = default_subjects(config)
    pool, test = cross_subject_split(ds, train_subjects, test_subjects)
    split = label_rate_split(ds, pool, config.label_rate, seed)
    if normalization is None:
        normalization = Normalization().fit({m: x[pool] for m, x in ds.inputs.items()})
    indices = {
        "labeled": split.labeled,
        "unlabeled": split.unlabeled,
        "validation": split.validation,
        "test": test,
    }
    data = experiment_from_indices(ds, indices, normalization)
    logger.info("splits: %s", ", ".join(f"{k} {len(v[1])}" for k, v in data.splits.items()))
    return data

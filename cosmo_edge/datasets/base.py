"""The in-memory dataset every loader returns: prepared (not normalised) arrays per modality."""

import logging
import os
import pathlib
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Union

import numpy as np

logger = logging.getLogger(__name__)

DATA_ENV = "COSMO_DATA"
PathLike = Union[str, "os.PathLike[str]"]


class DataRootError(Exception):
    """The data root is missing or does not hold the expected dataset; ``str()`` is one line."""


class DatasetFormatError(Exception):
    """A dataset's files or manifest are inconsistent (wrong shapes, unknown labels, bad JSON)."""


@dataclass
class MultimodalDataset:
    """Prepared trials of one dataset.

    Attributes:
        inputs: modality -> (N, *shape) float32, prepared by ``cosmo_edge.preprocess`` but NOT
            normalised (fit a ``Normalization`` on the training split only).
        labels: (N,) int64, 0-based class index into ``label_names``.
        subjects: (N,) int64 subject ids as the dataset numbers them (UTD-MHAD: 1..8).
        trial_ids: N recording ids, e.g. ``"a8_s1_t3"``.
        label_names: class names, index = label.
        meta: free-form provenance (source, absent trials, rates); copied by :meth:`subset`.
    """

    inputs: Dict[str, np.ndarray]
    labels: np.ndarray
    subjects: np.ndarray
    trial_ids: List[str]
    label_names: List[str]
    meta: Dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.labels = np.asarray(self.labels, dtype=np.int64)
        self.subjects = np.asarray(self.subjects, dtype=np.int64)
        self.trial_ids = list(self.trial_ids)
        count = len(self.labels)
        if len(self.subjects) != count or len(self.trial_ids) != count:
            raise DatasetFormatError(
                f"labels ({count}), subjects ({len(self.subjects)}) and trial_ids "
                f"({len(self.trial_ids)}) differ in length"
            )
        for name, arr in self.inputs.items():
            if arr.shape[0] != count:
                raise DatasetFormatError(f"modality {name!r} has {arr.shape[0]} samples, labels have {count}")
        if count and (self.labels.min() < 0 or self.labels.max() >= len(self.label_names)):
            raise DatasetFormatError(f"labels must lie in 0..{len(self.label_names) - 1}")

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    @property
    def modalities(self) -> List[str]:
        """Modality names in insertion order (the order encoders are built in)."""
        return list(self.inputs.keys())

    @property
    def num_classes(self) -> int:
        return len(self.label_names)

    def input_shapes(self) -> Dict[str, tuple]:
        """Per-sample shape of each modality."""
        return {name: tuple(arr.shape[1:]) for name, arr in self.inputs.items()}

    def subset(self, index: Union[Sequence[int], np.ndarray]) -> "MultimodalDataset":
        """A new dataset of the selected rows (integer indices or a boolean mask); arrays are copies."""
        idx = np.asarray(index)
        if idx.dtype == bool:
            idx = np.flatnonzero(idx)
        idx = idx.astype(np.int64)
        return MultimodalDataset(
            inputs={name: arr[idx] for name, arr in self.inputs.items()},
            labels=self.labels[idx],
            subjects=self.subjects[idx],
            trial_ids=[self.trial_ids[i] for i in idx],
            label_names=list(self.label_names),
            meta=dict(self.meta),
        )

    def select_modalities(self, modalities: Sequence[str]) -> "MultimodalDataset":
        """The same trials with only ``modalities`` (in that order); arrays are shared, not copied."""
        missing = [m for m in modalities if m not in self.inputs]
        if missing:
            raise KeyError(f"modalities {missing} not loaded; have {self.modalities}")
        return MultimodalDataset(
            inputs={m: self.inputs[m] for m in modalities},
            labels=self.labels,
            subjects=self.subjects,
            trial_ids=self.trial_ids,
            label_names=self.label_names,
            meta=dict(self.meta),
        )

    def class_counts(self) -> np.ndarray:
        """(K,) number of samples per class."""
        return np.bincount(self.labels, minlength=self.num_classes)


def resolve_data_root(flag: Optional[PathLike], env_var: str = DATA_ENV) -> pathlib.Path:
    """The data root from ``flag``, else ``$COSMO_DATA``; checked to exist and to hold a dataset.

    A dataset is UTD-MHAD (``Inertial/``, ``Skeleton/``, ``Depth/`` folders of ``.mat`` files;
    which folders must be there is checked by the loader for the requested modalities), USC-HAD
    (``Subject*/a*t*.mat``) or the generic format (``manifest.json``).
    Raises :class:`DataRootError` whose message is one line naming where the path came from
    and what was expected.
    """
    expected = (
        "expected Inertial/ Skeleton/ Depth/ folders of UTD-MHAD .mat files, "
        "USC-HAD Subject*/a*t*.mat files, or a manifest.json"
    )
    if flag:
        source, value = "--data-root", str(flag)
    elif os.environ.get(env_var):
        source, value = env_var, os.environ[env_var]
    else:
        raise DataRootError(f"no data root: pass --data-root DIR or set {env_var}=DIR ({expected})")
    root = pathlib.Path(value).expanduser()
    if not root.is_dir():
        raise DataRootError(f"{source}={value}: not a directory ({expected})")
    has_utd = any((root / name).is_dir() for name in ("Inertial", "Skeleton", "Depth"))
    has_usc = any(root.glob("Subject*/a*t*.mat"))
    if not (has_utd or has_usc or (root / "manifest.json").is_file()):
        raise DataRootError(f"{source}={value}: {expected}")
    logger.debug("data root %s (from %s)", root, source)
    return root

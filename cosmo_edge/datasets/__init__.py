"""Datasets: loaders (UTD-MHAD, USC-HAD, generic ``.npz`` + manifest), splits and synthetic data.

Every loader returns a :class:`MultimodalDataset` of prepared, un-normalised arrays in the shapes
of ``cosmo_edge.preprocess.INPUT_SHAPES``; see ``docs/datasets.md``.
"""

from cosmo_edge.datasets.base import (
    DATA_ENV,
    DataRootError,
    DatasetFormatError,
    MultimodalDataset,
    resolve_data_root,
)
from cosmo_edge.datasets.cache import CACHE_ENV, default_cache_dir
from cosmo_edge.datasets.loader import load_dataset
from cosmo_edge.datasets.npz_format import GenericRecording, load_generic, read_manifest, write_generic
from cosmo_edge.datasets.splits import (
    LABEL_RATES_PERCENT,
    LabelSplit,
    cross_subject_split,
    label_rate_split,
    labeled_per_class,
)
from cosmo_edge.datasets.synthetic import make_synthetic_dataset
from cosmo_edge.datasets.usc_had import LABEL_NAMES as USC_LABEL_NAMES
from cosmo_edge.datasets.usc_had import load_usc_had, usc_split
from cosmo_edge.datasets.utd_mhad import LABEL_NAMES as UTD_LABEL_NAMES
from cosmo_edge.datasets.utd_mhad import load_utd_mhad

__all__ = [
    "CACHE_ENV",
    "DATA_ENV",
    "LABEL_RATES_PERCENT",
    "DataRootError",
    "DatasetFormatError",
    "GenericRecording",
    "LabelSplit",
    "MultimodalDataset",
    "cross_subject_split",
    "label_rate_split",
    "labeled_per_class",
    "default_cache_dir",
    "load_dataset",
    "load_generic",
    "load_usc_had",
    "load_utd_mhad",
    "make_synthetic_dataset",
    "read_manifest",
    "resolve_data_root",
    "USC_LABEL_NAMES",
    "UTD_LABEL_NAMES",
    "usc_split",
    "write_generic",
]

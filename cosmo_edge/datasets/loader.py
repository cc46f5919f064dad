"""One entry point for "load whatever dataset this data root holds"."""

import logging
import pathlib
from typing import Optional, Sequence

from cosmo_edge.datasets.base import MultimodalDataset, PathLike
from cosmo_edge.datasets.npz_format import MANIFEST_NAME, load_generic
from cosmo_edge.datasets.utd_mhad import load_utd_mhad

logger = logging.getLogger(__name__)

DEFAULT_MODALITIES = ("imu", "skeleton")


def load_dataset(
    root: PathLike,
    modalities: Optional[Sequence[str]] = None,
    cache_dir: Optional[PathLike] = None,
    use_cache: bool = True,
) -> MultimodalDataset:
    """A generic dataset when ``root`` holds ``manifest.json``, else UTD-MHAD ``.mat`` folders.

    ``modalities`` defaults to every modality of a generic dataset, and to IMU + skeleton (the
    paper's UTD setting) for UTD-MHAD. Generic datasets are read directly (no cache).
    """
    base = pathlib.Path(root)
    if (base / MANIFEST_NAME).is_file():
        logger.info("loading generic dataset %s", base)
        return load_generic(base, modalities)
    return load_utd_mhad(base, modalities or DEFAULT_MODALITIES, cache_dir=cache_dir, use_cache=use_cache)

"""One entry point for "load whatever dataset this data root holds"."""

import logging
import pathlib
from typing import Optional, Sequence

from cosmo_edge.datasets.base import MultimodalDataset, PathLike
from cosmo_edge.datasets.npz_format import MANIFEST_NAME, load_generic
from cosmo_edge.datasets.usc_had import load_usc_had
from cosmo_edge.datasets.utd_mhad import load_utd_mhad

logger = logging.getLogger(__name__)

DEFAULT_MODALITIES = ("imu", "skeleton")


def load_dataset(
    root: PathLike,
    modalities: Optional[Sequence[str]] = None,
    cache_dir: Optional[PathLike] = None,
    use_cache: bool = True,
) -> MultimodalDataset:
    """The dataset at ``root``: generic (``manifest.json``), USC-HAD (``Subject*/``) or UTD-MHAD.

    ``modalities`` defaults to every modality of a generic dataset, to ``acc`` + ``gyro`` for
    USC-HAD (default 2 s windows) and to IMU + skeleton (the paper's UTD setting) for UTD-MHAD.
    Generic and USC-HAD datasets are read directly (no cache).
    """
    base = pathlib.Path(root)
    if (base / MANIFEST_NAME).is_file():
        logger.info("loading generic dataset %s", base)
        return load_generic(base, modalities)
    if any(base.glob("Subject*/a*t*.mat")):
        logger.info("loading USC-HAD %s", base)
        ds = load_usc_had(base)
        return ds.select_modalities(modalities) if modalities else ds
    return load_utd_mhad(base, modalities or DEFAULT_MODALITIES, cache_dir=cache_dir, use_cache=use_cache)

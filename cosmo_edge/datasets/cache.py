"""Cache of prepared datasets, stored in the generic ``.npz`` format.

Preparing UTD-MHAD's 861 depth clips from ``.mat`` files takes tens of seconds; the cache turns
that into a few seconds. An entry lives in ``<cache_dir>/<name>-<key>/`` where the key hashes
the preprocessing signature (``cosmo_edge.preprocess.preprocess_signature``) and a fingerprint
of the source files (names, sizes, modification times), so changing either the preparation or
the data starts a new entry. An entry records which modalities it holds; asking for one it lacks
rebuilds it with the union. Entries are written to a temporary folder and renamed into place, so
a crash never leaves a half entry behind.
"""

import hashlib
import json
import logging
import os
import pathlib
import shutil
import tempfile
import time
from typing import Any, Callable, Iterable, List, Optional, Sequence

from cosmo_edge.datasets.base import MultimodalDataset, PathLike
from cosmo_edge.datasets.npz_format import (
    MANIFEST_NAME,
    dataset_recordings,
    load_generic,
    read_manifest,
    write_generic,
)
from cosmo_edge.preprocess import preprocess_signature

logger = logging.getLogger(__name__)

CACHE_ENV = "COSMO_CACHE"
CACHE_FORMAT_VERSION = 2  # 2: prepared depth entries record depth_scale_m = 1.0


def default_cache_dir(flag: Optional[PathLike] = None) -> pathlib.Path:
    """``flag``, else ``$COSMO_CACHE``, else ``~/.cache/cosmo-edge``."""
    if flag:
        return pathlib.Path(flag).expanduser()
    if os.environ.get(CACHE_ENV):
        return pathlib.Path(os.environ[CACHE_ENV]).expanduser()
    return pathlib.Path("~/.cache/cosmo-edge").expanduser()


def file_fingerprint(paths: Iterable[pathlib.Path], root: pathlib.Path) -> List[List[Any]]:
    """[relative path, size, mtime_ns] per file: cheap, and changes when a file is replaced."""
    rows = []
    for path in sorted(paths):
        stat = path.stat()
        rows.append([path.relative_to(root).as_posix(), stat.st_size, stat.st_mtime_ns])
    return rows


def cache_key(name: str, fingerprint: Any) -> str:
    """Hex digest over the cache format, the preprocessing signature and the source fingerprint."""
    payload = json.dumps(
        {
            "cache_format": CACHE_FORMAT_VERSION,
            "name": name,
            "preprocess": preprocess_signature(),
            "source": fingerprint,
        },
        sort_keys=True,
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:16]


def _cached_modalities(entry: pathlib.Path) -> List[str]:
    """Modalities held by a complete entry, or [] when there is none (or it is unreadable)."""
    if not (entry / MANIFEST_NAME).is_file():
        return []
    try:
        return list(read_manifest(entry)["modalities"])
    except (OSError, ValueError) as exc:
        logger.warning("cache entry %s unreadable (%s); rebuilding it", entry, exc)
        return []


def load_or_build(
    name: str,
    fingerprint: Any,
    modalities: Sequence[str],
    build: Callable[[List[str]], MultimodalDataset],
    cache_dir: Optional[PathLike] = None,
) -> MultimodalDataset:
    """Return the prepared dataset from the cache, or ``build(modalities)`` it and store it.

    Args:
        name: dataset name, the first part of the entry's folder name.
        fingerprint: JSON-able description of the source files (see :func:`file_fingerprint`).
        modalities: the modalities wanted, in order.
        build: loads and prepares the given modalities from the source.
        cache_dir: cache root (see :func:`default_cache_dir`).
    """
    root = default_cache_dir(cache_dir)
    entry = root / f"{name}-{cache_key(name, fingerprint)}"
    wanted = list(modalities)
    cached = _cached_modalities(entry)
    if cached and set(wanted) <= set(cached):
        start = time.perf_counter()
        ds = load_generic(entry, wanted)
        logger.info(
            "loaded %d %s trials from cache %s in %.1f s", len(ds), name, entry, time.perf_counter() - start
        )
        return ds
    to_build = wanted + [m for m in cached if m not in wanted]
    start = time.perf_counter()
    ds = build(to_build)
    logger.info(
        "prepared %d %s trials (%s) in %.1f s",
        len(ds),
        name,
        ", ".join(to_build),
        time.perf_counter() - start,
    )
    try:
        _store(entry, ds, name)
    except OSError as exc:
        logger.warning("could not write dataset cache %s (%s); continuing without it", entry, exc)
    return ds.select_modalities(wanted)


def _store(entry: pathlib.Path, ds: MultimodalDataset, name: str) -> None:
    """Write ``ds`` as a prepared generic dataset into ``entry`` atomically (temp folder + rename)."""
    entry.parent.mkdir(parents=True, exist_ok=True)
    tmp = pathlib.Path(tempfile.mkdtemp(prefix=f".{entry.name}.", dir=str(entry.parent)))
    try:
        meta = {k: v for k, v in ds.meta.items() if k != "skipped"}
        info = {"depth": {"units": "m", "depth_scale_m": 1.0}}  # prepared depth is already in metres
        write_generic(
            tmp,
            dataset_recordings(ds),
            ds.label_names,
            name,
            info,
            prepared=preprocess_signature(),
            meta=meta,
        )
        if entry.exists():
            shutil.rmtree(entry)
        os.replace(tmp, entry)
        logger.info("cached prepared %s in %s", name, entry)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)

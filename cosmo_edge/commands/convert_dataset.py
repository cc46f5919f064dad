"""``cosmo-edge convert-dataset``: write UTD-MHAD in the generic ``.npz`` + manifest format.

By default the recordings keep their raw lengths and units (time-first arrays: IMU (n, 6) at 50 Hz,
skeleton (F, 20, 3) at 30 Hz, depth (F, 240, 320) uint16 mm), so any preparation can be run on
them later. ``--prepared`` writes the prepared arrays instead (the same as the dataset cache).
"""

import argparse
import logging
import time

NAME = "convert-dataset"
HELP = "convert UTD-MHAD .mat files into the generic .npz + manifest.json dataset format"

logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Source, destination and which modalities to convert."""
    parser.add_argument(
        "--data-root", help="UTD-MHAD folder with Inertial/ Skeleton/ Depth/ (default $COSMO_DATA)"
    )
    parser.add_argument("--out", required=True, help="output folder for manifest.json and recordings/")
    parser.add_argument(
        "--modalities",
        default="imu,skeleton,depth",
        help="comma-separated subset of imu,skeleton,depth (default: all three)",
    )
    parser.add_argument(
        "--prepared",
        action="store_true",
        help="write prepared arrays (IMU 120x6, skeleton 40x20x3, depth 40x60x80 m) instead of raw ones",
    )


def run(args: argparse.Namespace) -> int:
    """Convert; a wrong data root or output folder is one line on stderr and exit status 2."""
    import pathlib
    import sys

    from cosmo_edge.datasets import DataRootError, DatasetFormatError, resolve_data_root, write_generic
    from cosmo_edge.datasets.npz_format import MANIFEST_NAME, dataset_recordings
    from cosmo_edge.datasets.utd_mhad import (
        DATASET_NAME,
        DEPTH_SCALE_M,
        LABEL_NAMES,
        SOURCES,
        iter_raw_recordings,
        load_utd_mhad,
        scan_trials,
    )
    from cosmo_edge.preprocess import preprocess_signature

    modalities = [m.strip() for m in args.modalities.split(",") if m.strip()]
    unknown = [m for m in modalities if m not in SOURCES]
    if unknown or not modalities:
        print(
            f"cosmo-edge convert-dataset: --modalities must be a subset of {sorted(SOURCES)}", file=sys.stderr
        )
        return 2
    out = pathlib.Path(args.out).expanduser()
    if (out / MANIFEST_NAME).exists():
        print(
            f"cosmo-edge convert-dataset: {out} already holds a {MANIFEST_NAME}; choose a new --out",
            file=sys.stderr,
        )
        return 2
    start = time.perf_counter()
    try:
        root = resolve_data_root(args.data_root)
        _, absent = scan_trials(root, modalities)
        info = {
            "imu": {"units": "acc xyz g, gyro xyz deg/s"},
            "skeleton": {"units": "m", "joints": 20},
            "depth": {
                "units": "m" if args.prepared else "mm",
                "depth_scale_m": 1.0 if args.prepared else DEPTH_SCALE_M,
            },
        }
        meta = {"source": DATASET_NAME, "absent_trials": absent, "converted_from": "UTD-MHAD .mat files"}
        if args.prepared:
            ds = load_utd_mhad(root, modalities, use_cache=False)
            recordings = dataset_recordings(ds)
            prepared = preprocess_signature()
        else:
            recordings = iter_raw_recordings(root, modalities)
            prepared = None
        path = write_generic(
            out, recordings, LABEL_NAMES, DATASET_NAME, {m: info[m] for m in modalities}, prepared, meta
        )
    except (DataRootError, DatasetFormatError) as exc:
        print(f"cosmo-edge convert-dataset: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"cosmo-edge convert-dataset: cannot write {out}: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {path} ({time.perf_counter() - start:.1f} s)")
    return 0

"""Load time of UTD-MHAD from the ``.mat`` files (cold) against the prepared-dataset cache.

Usage: ``python benchmarks/dataset_load.py --data-root DIR`` (or ``COSMO_DATA=DIR``). The cache
goes to a fresh temporary folder unless ``--cache-dir`` is given. The baseline, measured in the
same run, is the cold load without any cache. Prints a table and writes
``benchmarks/results/dataset_load.json``.
"""

import argparse
import json
import pathlib
import platform
import sys
import tempfile
import time
from typing import Dict, List, Sequence

from cosmo_edge.datasets import DataRootError, load_utd_mhad, resolve_data_root

RESULTS = pathlib.Path(__file__).resolve().parent / "results" / "dataset_load.json"


def timed_load(root: pathlib.Path, modalities: Sequence[str], cache_dir: str, use_cache: bool) -> float:
    """Seconds for one ``load_utd_mhad`` call."""
    start = time.perf_counter()
    load_utd_mhad(root, modalities, cache_dir=cache_dir, use_cache=use_cache)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", help="UTD-MHAD folder (default $COSMO_DATA)")
    parser.add_argument("--cache-dir", help="cache root (default: a fresh temporary folder)")
    parser.add_argument("--modalities", default="imu,skeleton;imu,skeleton,depth", help="';'-separated sets")
    args = parser.parse_args()
    try:
        root = resolve_data_root(args.data_root)
    except DataRootError as exc:
        print(exc, file=sys.stderr)
        return 2
    rows: List[Dict[str, object]] = []
    with tempfile.TemporaryDirectory() as tmp:
        cache_dir = args.cache_dir or tmp
        for spec in args.modalities.split(";"):
            mods = spec.split(",")
            cold = timed_load(root, mods, cache_dir, use_cache=False)
            first = timed_load(root, mods, cache_dir, use_cache=True)
            cached = timed_load(root, mods, cache_dir, use_cache=True)
            rows.append(
                {
                    "modalities": "+".join(mods),
                    "cold_s": round(cold, 2),
                    "cold_and_write_cache_s": round(first, 2),
                    "cached_s": round(cached, 2),
                    "speedup_cached_vs_cold": round(cold / cached, 1),
                }
            )
    print(f"{'modalities':<22}{'cold s':>9}{'cold+write s':>14}{'cached s':>10}{'speedup':>9}")
    for row in rows:
        print(
            f"{row['modalities']:<22}{row['cold_s']:>9}{row['cold_and_write_cache_s']:>14}"
            f"{row['cached_s']:>10}{row['speedup_cached_vs_cold']:>8}x"
        )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    machine = {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "processor": platform.processor(),
    }
    RESULTS.write_text(json.dumps({"machine": machine, "rows": rows}, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

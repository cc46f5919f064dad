"""Command-line options shared by ``pretrain``, ``finetune`` and ``evaluate``, and config resolution.

Precedence: RunConfig defaults < ``--config FILE`` (JSON, as written to a run's config.json) < the
named flags < ``--set key=value`` overrides (dotted keys, values parsed as JSON when they parse).
"""

import argparse
import json
import logging
import pathlib
from typing import Any, Dict, List, Optional

from cosmo_edge.training.config import RunConfig, apply_overrides

logger = logging.getLogger(__name__)


def add_data_arguments(parser: argparse.ArgumentParser) -> None:
    """--data-root, --dataset, --modalities, --label-rate, --seed, --cache-dir."""
    parser.add_argument("--data-root", help="UTD-MHAD folder (default: $COSMO_DATA)")
    parser.add_argument("--dataset", choices=["utd-mhad", "synthetic"], help="dataset (default: utd-mhad)")
    parser.add_argument("--modalities", help="comma-separated modalities in model order, e.g. imu,skeleton")
    parser.add_argument("--label-rate", type=float, help="labeled percent of 20 trials per class (5..100)")
    parser.add_argument("--seed", type=int, help="seed for the label draw, initialisation and data order")
    parser.add_argument(
        "--cache-dir", help="prepared-data cache (default: $COSMO_CACHE or ~/.cache/cosmo-edge)"
    )


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """--out, --config, --set, --threads, --no-progress."""
    parser.add_argument("--out", required=True, help="run directory (created if needed)")
    parser.add_argument("--config", help="JSON config file (a run's config.json) to start from")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one config value, e.g. --set stage1.batch_size=32 (repeatable)",
    )
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch default)")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")


def parse_set(items: List[str]) -> Dict[str, Any]:
    """['a.b=3', 'c=x'] -> {'a.b': 3, 'c': 'x'} (JSON values where they parse, else strings)."""
    overrides: Dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--set expects KEY=VALUE, got {item!r}")
        try:
            overrides[key.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            overrides[key.strip()] = raw
    return overrides


def resolve_config(
    args: argparse.Namespace, base: Optional[RunConfig] = None, epochs_key: Optional[str] = None
) -> RunConfig:
    """Build the run's config from ``base`` (or defaults / --config) and the command-line flags."""
    if getattr(args, "config", None):
        config = RunConfig.from_dict(json.loads(pathlib.Path(args.config).read_text(encoding="utf-8")))
    else:
        config = base if base is not None else RunConfig()
    flags: Dict[str, Any] = {}
    if args.data_root:
        flags["data.data_root"] = args.data_root
    if args.dataset:
        flags["data.dataset"] = args.dataset
    if args.modalities:
        flags["data.modalities"] = [m.strip() for m in args.modalities.split(",") if m.strip()]
    if args.label_rate is not None:
        flags["data.label_rate"] = args.label_rate
    if args.seed is not None:
        flags["seed"] = args.seed
    if args.cache_dir:
        flags["data.cache_dir"] = args.cache_dir
    if epochs_key and getattr(args, "epochs", None) is not None:
        flags[epochs_key] = args.epochs
    flags.update(parse_set(getattr(args, "set", []) or []))
    return apply_overrides(config, flags)


def set_threads(threads: int) -> None:
    """Limit torch's intra-op threads when ``threads`` > 0 (long runs on a shared machine)."""
    if threads > 0:
        import torch

        torch.set_num_threads(threads)

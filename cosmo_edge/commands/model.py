"""``cosmo-edge model list|rollback``: the model versions of a daemon's state directory.

``list`` prints every version with where it came from, its held-out metrics and which one is active;
``rollback`` makes the previously active version (or ``--to VERSION``) active again. A running daemon
follows the pointer within a second and serves the rolled-back model from the next window on; a
stopped one serves it at its next start.
"""

import argparse

NAME = "model"
HELP = "list the model versions of the state directory, or roll back to an earlier one"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``list`` / ``rollback`` and where the state directory is."""
    parser.add_argument("action", choices=["list", "rollback"], help="what to do")
    parser.add_argument(
        "--state-dir",
        help="daemon state directory (default: the config's state_dir, else /var/lib/cosmo-edge)",
    )
    parser.add_argument("--config", help="daemon config file to take state_dir from")
    parser.add_argument(
        "--to", dest="to_version", help="rollback: this version (e.g. v0002) instead of the previous"
    )
    parser.add_argument("--json", action="store_true", help="list: print versions and history as JSON")


def _state_dir(args: argparse.Namespace) -> str:
    if args.state_dir:
        return str(args.state_dir)
    if args.config:
        from cosmo_edge.config import load_config

        return str(load_config(args.config).state_dir)
    return "/var/lib/cosmo-edge"


def _row(registry, version: str, active: str) -> dict:
    metrics = registry.metrics(version)
    holdout = metrics.get("holdout") or {}
    candidate = holdout.get("candidate") or {}
    return {
        "version": version,
        "active": version == active,
        "source": metrics.get("source", "?"),
        "parent": metrics.get("parent"),
        "created_unix_ns": metrics.get("created_unix_ns"),
        "holdout_accuracy": candidate.get("accuracy"),
        "holdout_macro_f1": candidate.get("macro_f1"),
        "holdout_windows": holdout.get("windows"),
        "train_windows": metrics.get("train_windows"),
    }


def _fmt(value) -> str:
    return "-" if value is None else (f"{value:.3f}" if isinstance(value, float) else str(value))


def run(args: argparse.Namespace) -> int:
    """0 on success; 1 when there is no registry or nothing to roll back to; 2 for a bad config."""
    import datetime
    import json
    import sys
    from pathlib import Path

    from cosmo_edge.config import ConfigError
    from cosmo_edge.finetune.registry import ModelRegistry, RegistryError

    try:
        state_dir = _state_dir(args)
    except ConfigError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    root = Path(state_dir) / "models"
    if not root.is_dir():
        print(f"cosmo-edge model: no model registry in {state_dir}", file=sys.stderr)
        return 1
    registry = ModelRegistry(root)
    if args.action == "rollback":
        try:
            version = registry.rollback(args.to_version)
        except RegistryError as exc:
            print(f"cosmo-edge model rollback: {exc}", file=sys.stderr)
            return 1
        print(f"active model is now {version} ({registry.model_path(version)})")
        return 0
    active = registry.active()
    rows = [_row(registry, v, active) for v in registry.versions()]
    if args.json:
        print(json.dumps({"active": active, "versions": rows, "history": registry.history()}, indent=2))
        return 0
    header = f"{'version':8} {'source':10} {'parent':7} {'created':19} {'acc':>6} {'F1':>6}"
    print(f"  {header} {'held':>5} {'train':>5}")
    for row in rows:
        created = row["created_unix_ns"]
        when = datetime.datetime.fromtimestamp(created / 1e9).isoformat(" ", "seconds") if created else "-"
        print(
            f"{'*' if row['active'] else ' ':2}{row['version']:8} {row['source']:10} {_fmt(row['parent']):7} "
            f"{when:19} {_fmt(row['holdout_accuracy']):>6} {_fmt(row['holdout_macro_f1']):>6} "
            f"{_fmt(row['holdout_windows']):>5} {_fmt(row['train_windows']):>5}"
        )
    events = registry.history()[-5:]
    if events:
        print("recent events:")
        for event in events:
            detail = event.get("reason") or ""
            print(f"  {event['event']:10} {event.get('version') or event.get('parent') or '':7} {detail}")
    return 0

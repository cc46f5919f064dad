"""``cosmo-edge train-bundled``: retrain the bundled simulator model and rewrite it in cosmo_edge/assets/.

Simulates ``--sessions`` sessions of the simulator's six activities (IMU + depth + radar, windows cut
by the daemon's own code), trains stage 1, QoM and stage 2 (``cosmo_edge.training``), copies the
stage-2 checkpoint to ``--out`` (default: the bundled ``sim_model.pt``) and writes the model card
(``sim_model.json``: held-out accuracy, splits, timings). A few minutes on two CPU cores.
"""

import argparse
import json
import logging
import tempfile
from pathlib import Path

NAME = "train-bundled"
HELP = "retrain the bundled simulator model (IMU + depth + radar) with the project's training pipeline"

logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """--out, --sessions, --seed, --threads, --run-dir, --no-progress."""
    parser.add_argument("--out", type=Path, help="checkpoint to write (default: the bundled sim_model.pt)")
    parser.add_argument(
        "--sessions", type=int, default=6, help="simulated sessions (the last 2 are held out)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the simulation, splits and training")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--run-dir", type=Path, help="keep the training run directory here")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")


def run(args: argparse.Namespace) -> int:
    """Train, write the checkpoint and its card, print the held-out accuracy."""
    import torch

    from cosmo_edge.bundled import SIM_MODEL, SIM_MODEL_CARD
    from cosmo_edge.bundled.simdata import SimDataConfig
    from cosmo_edge.bundled.train import train_bundled

    torch.set_num_threads(max(1, args.threads))
    out = args.out or SIM_MODEL
    card_path = SIM_MODEL_CARD if args.out is None else out.with_suffix(".json")
    data_config = SimDataConfig(sessions=args.sessions, seed=args.seed)
    with tempfile.TemporaryDirectory(prefix="cosmo-bundled-") as tmp:
        run_dir = args.run_dir or Path(tmp)
        path, card = train_bundled(out, run_dir, data_config, progress=not args.no_progress)
    card["command"] = f"cosmo-edge train-bundled --sessions {args.sessions} --seed {args.seed}"
    card_path.write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {path} ({card['bytes'] / 1e6:.2f} MB) and {card_path}")
    print(
        f"held-out sessions: test accuracy {card['test_accuracy']:.3f}, macro-F1 {card['test_macro_f1']:.3f}"
    )
    return 0

"""``cosmo-edge pretrain``: stage 1 (contrastive fusion on the unlabeled split) and QoM.

Writes config.json, split.json, stage1.pt, qom.json and metrics.json into ``--out``.
"""

import argparse
import logging

NAME = "pretrain"
HELP = "stage 1: contrastive fusion pre-training on unlabeled data, then QoM weights"

logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Data options, --epochs (stage 1) and the run options."""
    from cosmo_edge.training.cli_args import add_data_arguments, add_run_arguments

    add_data_arguments(parser)
    parser.add_argument(
        "--method",
        choices=["cosmo", "cmc", "cpc"],
        default="cosmo",
        help="pre-training method (default cosmo)",
    )
    parser.add_argument("--epochs", type=int, help="stage-1 epochs (default 300)")
    add_run_arguments(parser)


def run(args: argparse.Namespace) -> int:
    """Train stage 1, compute QoM, write the run directory; print where the checkpoint went."""
    from cosmo_edge.datasets import DataRootError
    from cosmo_edge.training.cli_args import resolve_config, set_threads
    from cosmo_edge.training.data import load_dataset, prepare_experiment
    from cosmo_edge.training.pipeline import pretrain
    from cosmo_edge.training.rundir import save_pretrain, start_run
    from cosmo_edge.training.seeding import seed_everything

    set_threads(args.threads)
    config = resolve_config(args, epochs_key="stage1.epochs")
    from cosmo_edge.training import distributed

    if distributed.is_enabled():  # started by torchrun with several processes (docs/distributed.md)
        from cosmo_edge.training.pretrain_distributed import run_distributed

        return run_distributed(args, config)
    seed_everything(config.seed)
    try:
        data = prepare_experiment(load_dataset(config.data, config.seed), config.data, config.seed)
    except DataRootError as exc:
        print(f"cosmo-edge pretrain: {exc}")
        return 2
    start_run(args.out, config, data)
    if args.method != "cosmo":  # a baseline's pre-training (cosmo_edge.training.baselines)
        return run_baseline(args, config, data)
    result = pretrain(config, data, progress=not args.no_progress)
    path = save_pretrain(args.out, config, data, result)
    weights = ", ".join(f"{m} {w:.3f}" for m, w in zip(data.modalities, result.qom["weights"]))
    print(
        f"stage 1: {config.stage1.epochs} epochs in {result.seconds['stage1']:.1f} s, "
        f"final loss {result.history[-1]['loss']:.4f}; QoM weights: {weights}"
    )
    print(f"checkpoint: {path}")
    return 0


def run_baseline(args: argparse.Namespace, config, data) -> int:
    """CMC or CPC pre-training on the unlabeled split; writes stage1.pt tagged with the method."""
    import pathlib

    from cosmo_edge.training.baselines import pretrain_method, save_method_pretrain
    from cosmo_edge.training.rundir import update_metrics

    result = pretrain_method(args.method, config, data, progress=not args.no_progress)
    path = save_method_pretrain(pathlib.Path(args.out) / "stage1.pt", args.method, config, data, result)
    final = result.history[-1]["loss"] if result.history else float("nan")
    update_metrics(
        args.out, "stage1", {"method": args.method, "final_loss": final, "history": result.history}
    )
    print(
        f"{args.method}: {len(result.history)} epochs in {result.seconds['stage1']:.1f} s, "
        f"final loss {final:.4f}"
    )
    print(f"checkpoint: {path}")
    return 0

"""``cosmo-edge evaluate``: accuracy, macro-F1 and confusion matrix of a classifier checkpoint.

Uses the checkpoint's modalities and normalisation; the test split is the cross-subject test set,
the validation split the held-out training-pool trials (both the same at every label rate).
"""

import argparse
import logging

NAME = "evaluate"
HELP = "evaluate a classifier checkpoint on the test or validation split"

logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """--checkpoint, --split, data options and an optional --out JSON."""
    from cosmo_edge.training.cli_args import add_data_arguments

    parser.add_argument("--checkpoint", required=True, help="classifier.pt / supervised.pt")
    parser.add_argument("--split", choices=["test", "validation"], default="test", help="which split")
    add_data_arguments(parser)
    parser.add_argument(
        "--method", help="expected method (cosmo, supervised, a baseline); checked against the checkpoint"
    )
    parser.add_argument("--out", help="run directory: adds an 'evaluate' section to its metrics.json")


def run(args: argparse.Namespace) -> int:
    """Load the checkpoint, prepare the split with its normalisation, print the metrics."""
    from cosmo_edge.datasets import DataRootError
    from cosmo_edge.preprocess import Normalization
    from cosmo_edge.training.baselines import load_method_classifier
    from cosmo_edge.training.checkpoint import CheckpointError
    from cosmo_edge.training.cli_args import resolve_config
    from cosmo_edge.training.config import RunConfig
    from cosmo_edge.training.data import load_dataset, prepare_experiment
    from cosmo_edge.training.metrics import evaluate
    from cosmo_edge.training.rundir import update_metrics

    try:
        model, meta = load_method_classifier(args.checkpoint)
    except (CheckpointError, OSError) as exc:
        print(f"cosmo-edge evaluate: {exc}")
        return 2
    trained_by = [k for k in meta["metrics"] if k != "stage1"]
    wanted_section = {"cosmo": "stage2"}.get(args.method or "", args.method)
    if args.method and wanted_section not in trained_by:
        print(f"cosmo-edge evaluate: --method {args.method} but the checkpoint holds {trained_by}")
        return 2
    config = resolve_config(args, base=RunConfig.from_dict(meta["config"]))
    if list(config.data.modalities) != model.modalities:
        wanted, have = config.data.modalities, model.modalities
        print(f"cosmo-edge evaluate: --modalities {wanted} differ from the model's {have}")
        return 2
    normalization = Normalization.from_dict(meta["normalization"])
    try:
        data = prepare_experiment(
            load_dataset(config.data, config.seed), config.data, config.seed, normalization
        )
    except DataRootError as exc:
        print(f"cosmo-edge evaluate: {exc}")
        return 2
    inputs, labels = data.splits[args.split]
    metrics = evaluate(model, inputs, labels, model.num_classes)
    print(
        f"{args.checkpoint}: {args.split} accuracy {metrics['accuracy']:.4f}, "
        f"macro-F1 {metrics['macro_f1']:.4f} ({len(labels)} samples)"
    )
    if args.out:
        update_metrics(args.out, "evaluate", dict(metrics, split=args.split, checkpoint=str(args.checkpoint)))
    return 0

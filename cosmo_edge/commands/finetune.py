"""``cosmo-edge finetune``: stage 2 (iterative fusion learning) on the labeled split.

``--pretrained RUN/stage1.pt`` starts from stage-1 encoders and their QoM weights; ``--from-scratch``
trains the supervised baseline (same encoders and classifier, random initialisation, joint training).
Prints test accuracy and macro-F1 at the last epoch and at the validation-selected epoch.
"""

import argparse
import logging

NAME = "finetune"
HELP = "stage 2: iterative fusion learning on the labeled data (or --from-scratch baseline)"

logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """--pretrained / --from-scratch, data options, --epochs (stage 2) and the run options."""
    from cosmo_edge.training.cli_args import add_data_arguments, add_run_arguments

    source = parser.add_mutually_exclusive_group()
    source.add_argument("--pretrained", help="stage-1 checkpoint (stage1.pt from cosmo-edge pretrain)")
    source.add_argument("--from-scratch", action="store_true", help="supervised baseline, no stage 1")
    add_data_arguments(parser)
    parser.add_argument(
        "--method",
        help="cosmo | supervised | singlemodal | deepsense | attnsense | cmc | cpc "
        "(default: the --pretrained checkpoint's method, or supervised with --from-scratch)",
    )
    parser.add_argument("--epochs", type=int, help="stage-2 (or baseline) epochs (default 500)")
    add_run_arguments(parser)


def run(args: argparse.Namespace) -> int:
    """Fine-tune (or train from scratch), save the classifier checkpoint, print the test metrics."""
    from cosmo_edge.datasets import DataRootError
    from cosmo_edge.preprocess import Normalization
    from cosmo_edge.training.baselines import MethodError, finetune_method, load_method_pretrained
    from cosmo_edge.training.checkpoint import CheckpointError
    from cosmo_edge.training.cli_args import resolve_config, set_threads
    from cosmo_edge.training.config import RunConfig
    from cosmo_edge.training.data import load_dataset, prepare_experiment
    from cosmo_edge.training.rundir import save_classifier, start_run
    from cosmo_edge.training.seeding import seed_everything

    set_threads(args.threads)
    pretrained, meta, normalization = None, None, None
    base = None
    method = args.method or ("supervised" if args.from_scratch or not args.pretrained else None)
    if args.pretrained:
        try:
            saved_method, pretrained, meta = load_method_pretrained(args.pretrained)
        except (CheckpointError, OSError) as exc:
            print(f"cosmo-edge finetune: {exc}")
            return 2
        if method is not None and method != saved_method:
            print(f"cosmo-edge finetune: --method {method}, but the checkpoint is from {saved_method}")
            return 2
        method = saved_method
        base = RunConfig.from_dict(meta["config"])
        normalization = Normalization.from_dict(meta["normalization"])
    section = {"cosmo": "stage2"}.get(method, method)
    epochs_section = section if section in ("stage2", "supervised") else "supervised"
    if method in ("cmc", "cpc"):
        epochs_section = "stage2"
    config = resolve_config(args, base=base, epochs_key=f"{epochs_section}.epochs")
    if pretrained is not None and list(config.data.modalities) != pretrained.model.modalities:
        print(
            f"cosmo-edge finetune: --modalities {config.data.modalities} differ from the "
            f"pre-trained encoders {pretrained.model.modalities}"
        )
        return 2
    if base is not None:
        warn_if_split_differs(base, config)
    seed_everything(config.seed)
    try:
        data = prepare_experiment(
            load_dataset(config.data, config.seed), config.data, config.seed, normalization
        )
    except DataRootError as exc:
        print(f"cosmo-edge finetune: {exc}")
        return 2
    start_run(args.out, config, data)
    progress = not args.no_progress
    try:
        model, result = finetune_method(method, config, data, pretrained, progress)
    except MethodError as exc:
        print(f"cosmo-edge finetune: {exc}")
        return 2
    path = save_classifier(args.out, section, config, data, model, meta["qom"] if meta else None, result)
    print_result(section, result)
    print(f"checkpoint: {path}")
    return 0


def print_result(name: str, result: dict) -> None:
    """One line per reported number: last epoch (primary) and validation-selected epoch."""
    last = result["last"].get("test")
    if last is not None:
        print(f"{name}: test accuracy {last['accuracy']:.4f}, macro-F1 {last['macro_f1']:.4f} (last epoch)")
    selected = result.get("val_selected")
    if selected is not None and "test" in selected["metrics"]:
        test = selected["metrics"]["test"]
        print(
            f"{name}: test accuracy {test['accuracy']:.4f}, macro-F1 {test['macro_f1']:.4f} "
            f"(epoch {selected['epoch']}, selected on validation)"
        )


def warn_if_split_differs(pretrained, config) -> None:
    """Stage 1 saw the unlabeled split of its own (dataset, label rate, seed); say so if these changed."""
    before = (pretrained.data.dataset, pretrained.data.label_rate, pretrained.seed)
    now = (config.data.dataset, config.data.label_rate, config.seed)
    if before != now:
        logger.warning(
            "stage 1 used dataset/label rate/seed %s, fine-tuning uses %s: some labeled trials may have "
            "been in stage 1's unlabeled data",
            before,
            now,
        )

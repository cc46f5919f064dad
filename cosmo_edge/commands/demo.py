"""``cosmo-edge demo``: train a small Cosmo model on generated data and print its accuracy.

Runs the whole recipe on the synthetic dataset (6 classes, IMU + skeleton, 10 % labels, noise 1.0): stage 1
(contrastive fusion on the unlabeled part), QoM, stage 2 (iterative fusion learning), and beside it
the supervised-from-scratch baseline with the same encoders and classifier. About a minute on two
CPU cores; ``--out`` keeps the run directories (checkpoints, metrics, QoM JSON).
"""

import argparse
import logging
import tempfile

NAME = "demo"
HELP = "train a small Cosmo model on generated data and print its accuracy"

logger = logging.getLogger(__name__)

# Short schedules sized for about a minute on two cores; the recipe is the same as for UTD-MHAD.
DEMO_OVERRIDES = {
    "data.dataset": "synthetic",
    "data.synthetic_noise_std": 1.0,  # noisy enough that one modality alone confuses pairs of classes
    "stage1.epochs": 60,
    "stage1.batch_size": 32,
    "stage1.lr_milestones": [40],
    "stage2.epochs": 60,
    "stage2.lr_milestones": [40],
    "qom.kmeans_n_init": 3,
    "stage2.eval_every": 5,
    "supervised.epochs": 60,
    "supervised.lr_milestones": [40],
    "supervised.eval_every": 5,
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """--seed, --label-rate, --out, --no-progress."""
    parser.add_argument("--seed", type=int, default=0, help="seed for data, labels and training")
    parser.add_argument("--label-rate", type=float, default=10.0, help="labeled percent of 20 per class")
    parser.add_argument("--out", help="keep the run directories here (default: a temporary folder)")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    parser.add_argument(
        "--threads", type=int, default=1, help="torch CPU threads (small models: 1 is fastest)"
    )


def run(args: argparse.Namespace) -> int:
    """Train Cosmo and the baseline on synthetic data; print a two-row accuracy table."""
    import time

    from cosmo_edge.training.cli_args import set_threads
    from cosmo_edge.training.config import RunConfig, apply_overrides
    from cosmo_edge.training.data import load_dataset, prepare_experiment
    from cosmo_edge.training.pipeline import finetune, pretrain, supervised
    from cosmo_edge.training.profile import classifier_profile
    from cosmo_edge.training.rundir import save_classifier, save_pretrain, start_run
    from cosmo_edge.training.seeding import seed_everything

    set_threads(args.threads)
    overrides = dict(DEMO_OVERRIDES, seed=args.seed, **{"data.label_rate": args.label_rate})
    config = apply_overrides(RunConfig(), overrides)
    seed_everything(config.seed)
    data = prepare_experiment(load_dataset(config.data, config.seed), config.data, config.seed)
    progress = not args.no_progress
    with tempfile.TemporaryDirectory(prefix="cosmo-demo-") as tmp:
        out = args.out or tmp
        start_run(out, config, data)
        started = time.perf_counter()
        pre = pretrain(config, data, progress)
        save_pretrain(out, config, data, pre)
        model, cosmo = finetune(config, data, pre.model.encoders, pre.qom, progress)
        save_classifier(out, "stage2", config, data, model, pre.qom, cosmo)
        cosmo_s = time.perf_counter() - started
        started = time.perf_counter()
        baseline_model, baseline = supervised(config, data, progress)
        save_classifier(out, "supervised", config, data, baseline_model, None, baseline)
        baseline_s = time.perf_counter() - started
    size = classifier_profile(model, data.input_shapes)
    labeled, unlabeled = len(data.splits["labeled"][1]), len(data.splits["unlabeled"][1])
    print(
        f"synthetic data: {data.num_classes} classes, {labeled} labeled + {unlabeled} unlabeled training "
        f"trials, {len(data.splits['test'][1])} test trials (unseen subjects)"
    )
    weights = ", ".join(f"{m} {w:.2f}" for m, w in zip(data.modalities, pre.qom["weights"]))
    print(f"QoM weights: {weights}")
    print(f"model: {size['parameters']:,} parameters, {size['flops_per_sample'] / 1e6:.1f} MFLOPs per window")
    print(f"{'model':<28}{'test accuracy':>15}{'macro-F1':>10}{'time (s)':>10}")
    for name, result, seconds in (
        ("Cosmo (stage 1 + 2)", cosmo, cosmo_s),
        ("supervised, same model", baseline, baseline_s),
    ):
        test = result["last"]["test"]
        print(f"{name:<28}{test['accuracy']:>15.3f}{test['macro_f1']:>10.3f}{seconds:>10.1f}")
    print("(test metrics at the last epoch; nothing was selected on the test set)")
    if args.out:
        print(f"run directory: {args.out}")
    return 0

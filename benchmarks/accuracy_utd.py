"""UTD-MHAD accuracy: Cosmo (stage 1 + QoM + stage 2) beside the supervised-from-scratch baseline.

For every modality pair, label rate and seed: stage 1 on that rate's unlabeled split, QoM, stage 2 on
the labeled split, and the same encoders + classifier trained from scratch on the same labels (same
augmentations). Reported: test accuracy and macro-F1 at the LAST epoch (primary), mean +- std
(ddof = 1) over seeds, the test accuracy at the validation-selected epoch (labelled as such), QoM
weights, the model size and the wall time of each stage. Nothing is selected on the test set.

    python benchmarks/accuracy_utd.py --data-root DIR            # full run (see --help for budgets)
    python benchmarks/accuracy_utd.py --rates 5 --seeds 0 --pairs imu,skeleton --quick

Finished jobs are appended to ``<out>.jsonl`` and skipped on a re-run with the same settings, so an
interrupted benchmark resumes. The tables go to ``<out>.md`` and the plot to ``<out>.png``.
"""

import argparse
import json
import logging
import multiprocessing
import os
import pathlib
import sys
import time
from typing import Any, Dict, List

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

from accuracy_report import write_report  # noqa: E402

logger = logging.getLogger("accuracy_utd")

# The recipe selected on the validation split (docs/training.md section 8) and budgets sized for two
# shared CPU cores. Stage-1 augmentation and the skeleton's hip-centred input are the code defaults.
DEFAULT_SETTINGS: Dict[str, Any] = {
    "stage1.epochs": 100,
    "stage1.lr_milestones": [35, 70],
    "qom.kmeans_n_init": 3,
    "model.qom_lambda": 0.5,
    "stage2.epochs": 200,
    "stage2.lr_milestones": [140, 160, 180],
    "stage2.first_phase": "classifier",
    "stage2.lr_encoders": 0.01,
    "stage2.eval_every": 20,
    "supervised.epochs": 200,
    "supervised.lr_milestones": [140, 160, 180],
    "supervised.eval_every": 20,
}
# Depth is by far the costliest modality on a CPU: coarser frames, every other frame, shorter schedules.
PAIR_SETTINGS: Dict[str, Dict[str, Any]] = {
    "imu,depth": {
        "model.encoders.depth.input_pool": 4,
        "model.encoders.depth.frame_stride": 4,
        "stage1.epochs": 25,
        "stage1.lr_milestones": [10, 20],
        "stage2.epochs": 60,
        "stage2.lr_milestones": [40, 50, 55],
        "stage2.eval_every": 20,
        "supervised.epochs": 60,
        "supervised.lr_milestones": [40, 50, 55],
        "supervised.eval_every": 20,
    }
}


# Stage 2 and the baseline on depth pairs get at least this many SGD steps: 60 epochs are plenty at
# 20-40 % labels (7-14 batches per epoch) but only 120 steps at 5 % (27 labels, 2 batches).
MIN_STAGE2_STEPS: Dict[str, int] = {"imu,depth": 400}


def stage2_epochs_for_steps(rate: float, min_steps: int, floor_epochs: int, batch_size: int = 16) -> int:
    """Epochs that give at least ``min_steps`` batches at ``rate`` (r/5 labeled trials x 27 classes)."""
    labeled = int(round(rate / 5)) * 27
    batches = max(1, labeled // batch_size)  # a remainder of 1 joins the previous batch
    if labeled % batch_size > 1:
        batches += 1
    return max(floor_epochs, -(-min_steps // batches))


# "Best supervised model of any size": wider encoders (about 1 M parameters), supervised only.
LARGE_SUPERVISED: Dict[str, Any] = {
    "model.encoders.imu.channels": [96, 160, 192],
    "model.encoders.skeleton.channels": [128, 192, 192],
    "model.hidden_dim": 256,
}


def parse_args(argv: List[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", help="UTD-MHAD folder (default: $COSMO_DATA)")
    parser.add_argument(
        "--cache-dir", help="prepared-data cache (default: $COSMO_CACHE or ~/.cache/cosmo-edge)"
    )
    parser.add_argument("--pairs", nargs="+", default=["imu,skeleton", "imu,depth"], help="modality pairs")
    parser.add_argument("--rates", default="5,10,20,40", help="label rates in percent")
    parser.add_argument("--seeds", default="0,1,2", help="seeds")
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="config override (all runs)"
    )
    parser.add_argument(
        "--set-pair",
        action="append",
        default=[],
        metavar="PAIR:KEY=VALUE",
        help="override for one pair only, e.g. imu,depth:stage1.epochs=40",
    )
    parser.add_argument("--workers", type=int, default=2, help="parallel processes (one torch thread each)")
    parser.add_argument(
        "--out", default=str(REPO / "benchmarks" / "results" / "utd_accuracy"), help="output stem"
    )
    parser.add_argument("--quick", action="store_true", help="tiny budgets to check the script end to end")
    parser.add_argument(
        "--large-supervised",
        default="5,10",
        help="label rates at which to also train a wider supervised model on imu,skeleton ('' for none)",
    )
    return parser.parse_args(argv)


def settings_for(args: argparse.Namespace, pair: str, rate: float) -> Dict[str, Any]:
    """Config overrides for one pair and rate: defaults, step budget, --quick, --set, then --set-pair."""
    from cosmo_edge.training.cli_args import parse_set

    settings = dict(DEFAULT_SETTINGS)
    settings.update(PAIR_SETTINGS.get(pair, {}))
    if pair in MIN_STAGE2_STEPS:
        for part in ("stage2", "supervised"):
            epochs = stage2_epochs_for_steps(rate, MIN_STAGE2_STEPS[pair], settings[f"{part}.epochs"])
            if epochs != settings[f"{part}.epochs"]:
                settings[f"{part}.epochs"] = epochs
                settings[f"{part}.lr_milestones"] = [int(epochs * f) for f in (0.7, 0.8, 0.9)]
    if args.quick:
        settings.update(
            {"stage1.epochs": 2, "stage2.epochs": 4, "supervised.epochs": 4, "qom.kmeans_n_init": 1}
        )
        settings.update({"stage2.eval_every": 2, "supervised.eval_every": 2})
    settings.update(parse_set(args.set))
    prefix = f"{pair}:"
    settings.update(parse_set([item[len(prefix) :] for item in args.set_pair if item.startswith(prefix)]))
    return settings


def summary(result: Dict[str, Any]) -> Dict[str, Any]:
    """Test metrics at the last epoch and at the validation-selected epoch."""
    last = result["last"]["test"]
    row = {
        "test_accuracy": last["accuracy"],
        "test_macro_f1": last["macro_f1"],
        "confusion": last["confusion"],
    }
    if "val_selected" in result:
        selected = result["val_selected"]
        row["valsel_epoch"] = selected["epoch"]
        row["valsel_test_accuracy"] = selected["metrics"]["test"]["accuracy"]
        row["valsel_test_macro_f1"] = selected["metrics"]["test"]["macro_f1"]
    row["seconds"] = result["seconds"]
    return row


def run_job(job: Dict[str, Any]) -> Dict[str, Any]:
    """One (pair, rate, seed): Cosmo and the supervised baseline. Runs in a worker process."""
    import torch

    from cosmo_edge.training import pipeline
    from cosmo_edge.training.config import RunConfig, apply_overrides
    from cosmo_edge.training.data import load_dataset, prepare_experiment
    from cosmo_edge.training.profile import classifier_profile
    from cosmo_edge.training.seeding import seed_everything

    torch.set_num_threads(1)
    overrides = dict(job["settings"])
    overrides.update(
        {
            "data.modalities": job["pair"].split(","),
            "data.label_rate": job["rate"],
            "data.data_root": job["data_root"],
            "data.cache_dir": job["cache_dir"],
            "seed": job["seed"],
        }
    )
    config = apply_overrides(RunConfig(), overrides)
    seed_everything(config.seed)
    data = prepare_experiment(load_dataset(config.data), config.data, config.seed)
    base = {"key": job["key"], "pair": job["pair"], "rate": job["rate"], "seed": job["seed"]}
    base.update(settings=job["settings"], variant=job["variant"], labeled=len(data.splits["labeled"][1]))
    if job["variant"] == "large-supervised":
        model, baseline = pipeline.supervised(config, data, progress=False)
        profile = classifier_profile(model, data.input_shapes)
        return dict(base, supervised=summary(baseline), parameters=profile["parameters"])
    pre = pipeline.pretrain(config, data, progress=False)
    model, cosmo = pipeline.finetune(config, data, pre.model.encoders, pre.qom, progress=False)
    seed_everything(config.seed)
    _, baseline = pipeline.supervised(config, data, progress=False)
    profile = classifier_profile(model, data.input_shapes)
    return dict(
        base,
        **{
            "unlabeled": len(data.splits["unlabeled"][1]),
            "stage1_s": pre.seconds["stage1"],
            "qom_s": pre.seconds["qom"],
            "stage1_final_loss": pre.history[-1]["loss"],
            "qom": {k: pre.qom.get(k) for k in ("weights", "hopkins", "k_star", "cluster_error", "q")},
            "cosmo": summary(cosmo),
            "supervised": summary(baseline),
            "parameters": profile["parameters"],
            "flops_per_sample": profile["flops_per_sample"],
            "label_names": data.label_names,
        },
    )


def job_key(pair: str, rate: float, seed: int, settings: Dict[str, Any], variant: str = "cosmo") -> str:
    spec = {"pair": pair, "rate": rate, "seed": seed, "settings": settings, "variant": variant}
    return json.dumps(spec, sort_keys=True)


def planned_jobs(args: argparse.Namespace) -> List[Dict[str, Any]]:
    """Every (pair, rate, seed) Cosmo job, plus the wide supervised model on imu,skeleton."""
    seeds = [int(s) for s in args.seeds.split(",")]
    jobs = []
    for pair in args.pairs:
        for rate in [float(r) for r in args.rates.split(",")]:
            settings = settings_for(args, pair, rate)
            for seed in seeds:
                jobs.append(dict(pair=pair, rate=rate, seed=seed, settings=settings, variant="cosmo"))
    large_rates = [float(r) for r in args.large_supervised.split(",") if r.strip()]
    if "imu,skeleton" in args.pairs:
        for rate in large_rates:
            settings = dict(settings_for(args, "imu,skeleton", rate), **LARGE_SUPERVISED)
            for seed in seeds:
                jobs.append(
                    dict(
                        pair="imu,skeleton",
                        rate=rate,
                        seed=seed,
                        settings=settings,
                        variant="large-supervised",
                    )
                )
    for job in jobs:
        job["key"] = job_key(job["pair"], job["rate"], job["seed"], job["settings"], job["variant"])
    return jobs


def main(argv: List[str]) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    for noisy in ("cosmo_edge", "models"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    from cosmo_edge.datasets import DataRootError, resolve_data_root

    try:
        root = str(resolve_data_root(args.data_root))
    except DataRootError as exc:
        print(f"accuracy_utd: {exc}")
        return 2
    out = pathlib.Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    log_path = out.with_suffix(".jsonl")
    done: Dict[str, Dict[str, Any]] = {}
    if log_path.is_file():
        for line in log_path.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            done[row["key"]] = row
    planned = planned_jobs(args)
    wanted = {job["key"] for job in planned}
    jobs = [job for job in planned if job["key"] not in done]
    for job in jobs:
        job.update(data_root=root, cache_dir=args.cache_dir)
    # Depth jobs first: they are the longest, so the pool finishes together.
    jobs.sort(key=lambda j: ("depth" not in j["pair"], j["variant"] != "cosmo", -j["rate"]))
    logger.info("%d jobs to run (%d already done) with %d workers", len(jobs), len(done), args.workers)
    started = time.perf_counter()
    context = multiprocessing.get_context("spawn")
    with context.Pool(max(1, args.workers)) as pool, log_path.open("a", encoding="utf-8") as log:
        for row in pool.imap_unordered(run_job, jobs):
            log.write(json.dumps(row) + "\n")
            log.flush()
            done[row["key"]] = row
            cosmo = row["cosmo"]["test_accuracy"] if "cosmo" in row else float("nan")
            logger.info(
                "%s %s %g%% seed %d: Cosmo %.3f, supervised %.3f",
                row["variant"], row["pair"], row["rate"], row["seed"], cosmo,
                row["supervised"]["test_accuracy"],
            )  # fmt: skip
    rows = [row for key, row in done.items() if key in wanted]
    elapsed = time.perf_counter() - started
    run = {"argv": argv, "workers": args.workers, "wall_s": elapsed, "cpus": os.cpu_count(), "ran": len(jobs)}
    write_report(rows, out, run)
    print(out.with_suffix(".md").read_text(encoding="utf-8"))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

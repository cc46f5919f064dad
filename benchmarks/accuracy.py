"""The accuracy study: Cosmo against every section-9 baseline, label rates, unlabeled data, ablations.

    python benchmarks/accuracy.py --dataset utd-mhad --pair imu,skeleton --data-root DIR
    python benchmarks/accuracy.py --dataset synthetic --quick          # the CI smoke test (< 2 min)

For each label rate and seed, every method trains on the same split (cosmo-method.md section 7):
Cosmo, supervised (same classifier from scratch), AttnSense-style, DeepSense-style, SingleModal
per modality, CMC and CPC. At ``--ablation-rates`` it adds Cosmo without QoM, without the iterative
alternation, SumAttn (where encoder widths are equal), fixed fusion weights and other P; at
``--unlabeled-rate`` Cosmo with a fraction of the unlabeled data (Fig. 12). Reported test metrics are
from the LAST epoch (primary) and from the validation-selected epoch; nothing is selected on test.

Pre-training results are cached under ``--run-dir`` and finished tasks are logged to
``<run-dir>/tasks.jsonl``, so an interrupted study resumes. Writes
``benchmarks/results/<dataset>_<pair>_study.md`` (+ ``.json`` and PNG plots).
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

from accuracy_study_report import write_study  # noqa: E402
from accuracy_tasks import run_task  # noqa: E402

logger = logging.getLogger("accuracy")

# The learning core's own defaults (cosmo_edge/training/config.py: stage 1 100 epochs, stage 2 and the
# supervised baselines 200), the recipe benchmarks/results/utd_accuracy.md uses; only the k-means restarts
# of the QoM search are fewer (3 instead of 10), as there. The report records what was used.
DEFAULT_SETTINGS: Dict[str, Any] = {
    "qom.kmeans_n_init": 3,
}
QUICK_SETTINGS: Dict[str, Any] = {
    "stage1.epochs": 2,
    "stage1.batch_size": 32,
    "stage2.epochs": 4,
    "supervised.epochs": 4,
    "stage2.eval_every": 2,
    "supervised.eval_every": 2,
    "qom.kmeans_n_init": 1,
    "qom.hopkins_repeats": 1,
}
MAIN_KINDS = ("cosmo", "scratch", "cmc", "cpc")


def floats(text: str) -> List[float]:
    return [float(v) for v in text.split(",") if v.strip()]


def parse_args(argv: List[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="utd-mhad", choices=["utd-mhad", "usc-had", "synthetic"])
    parser.add_argument("--pair", default="imu,skeleton", help="modalities in model order")
    parser.add_argument("--data-root", help="dataset folder (default: $COSMO_DATA)")
    parser.add_argument(
        "--cache-dir", help="prepared-data cache (default: $COSMO_CACHE or ~/.cache/cosmo-edge)"
    )
    parser.add_argument("--rates", default="5,10,20", help="label rates in percent")
    parser.add_argument("--seeds", default="0,1,2", help="seeds (>= 3 for mean +- std)")
    parser.add_argument("--kinds", default=",".join(MAIN_KINDS), help="main task kinds to run")
    parser.add_argument("--ablation-rates", default="10", help="rates for the ablations ('' for none)")
    parser.add_argument("--ablation-seeds", help="seeds for ablations and Fig. 12 (default: --seeds)")
    parser.add_argument(
        "--views", default="3,5", help="P values for the P ablation (the default P is in 'cosmo')"
    )
    parser.add_argument("--unlabeled-rate", type=float, default=10.0, help="label rate of the Fig. 12 runs")
    parser.add_argument("--unlabeled-fractions", default="0.25,0.5", help="fractions of the unlabeled split")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override")
    parser.add_argument("--workers", type=int, default=2, help="parallel processes (one torch thread each)")
    parser.add_argument("--run-dir", help="cache and task log (default: <out-dir>/runs/<dataset>_<pair>)")
    parser.add_argument("--out-dir", default=str(REPO / "benchmarks" / "results"), help="report folder")
    parser.add_argument("--report-only", action="store_true", help="write the report from the task log")
    parser.add_argument("--quick", action="store_true", help="one seed, two rates, tiny budgets (CI smoke)")
    return parser.parse_args(argv)


def study_settings(args: argparse.Namespace) -> Dict[str, Any]:
    from cosmo_edge.training.cli_args import parse_set

    settings = dict(QUICK_SETTINGS if args.quick else DEFAULT_SETTINGS)
    if args.dataset == "usc-had":
        settings["model.fusion_op"] = "sum"
    settings.update(parse_set(args.set))
    return settings


def plan(args: argparse.Namespace, settings: Dict[str, Any]) -> List[Dict[str, Any]]:
    """Every task of the study, each with a key that changes when its settings do."""
    rates, seeds = floats(args.rates), [int(s) for s in floats(args.seeds)]
    if args.quick:
        rates, seeds = rates[:2], seeds[:1]
    ablation_rates = [r for r in floats(args.ablation_rates) if r in rates] if args.ablation_rates else []
    ablation_seeds = [int(s) for s in floats(args.ablation_seeds)] if args.ablation_seeds else seeds
    tasks = []

    def add(kind: str, rate: float, seed: int, param: Any = None, **extra: Any) -> None:
        base = dict(kind=kind, rate=rate, seed=seed, param=param, settings=settings, **extra)
        base.update(dataset=args.dataset, pair=args.pair)
        tasks.append(dict(base, key=json.dumps(base, sort_keys=True)))

    for rate in rates:
        for seed in seeds:
            for kind in args.kinds.split(","):
                ablate = kind == "cosmo" and rate in ablation_rates and seed in ablation_seeds
                add(kind, rate, seed, ablations=ablate) if kind == "cosmo" else add(kind, rate, seed)
    for rate in ablation_rates:
        for seed in ablation_seeds:
            add("fixed", rate, seed)
            for views in [int(v) for v in floats(args.views)]:
                add("views", rate, seed, views)
    for fraction in floats(args.unlabeled_fractions):
        for seed in ablation_seeds:
            add("unlabeled", args.unlabeled_rate, seed, fraction)
    return tasks


def main(argv: List[str]) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    for noisy in ("cosmo_edge", "models"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    from cosmo_edge.datasets import DataRootError, resolve_data_root
    from cosmo_edge.training.config import RunConfig, apply_overrides

    root = None
    if args.dataset != "synthetic":
        try:
            root = str(resolve_data_root(args.data_root))
        except DataRootError as exc:
            print(f"accuracy: {exc}")
            return 2
    stem = f"{args.dataset}_{args.pair.replace(',', '-')}_study" + ("_quick" if args.quick else "")
    out_dir = pathlib.Path(args.out_dir)
    run_dir = pathlib.Path(args.run_dir) if args.run_dir else out_dir / "runs" / stem
    run_dir.mkdir(parents=True, exist_ok=True)
    out_dir.mkdir(parents=True, exist_ok=True)
    settings = study_settings(args)
    tasks = plan(args, settings)
    log_path = run_dir / "tasks.jsonl"
    done: Dict[str, Dict[str, Any]] = {}
    if log_path.is_file():
        for line in log_path.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            done[row["key"]] = row
    todo = [dict(t, data_root=root, cache_dir=args.cache_dir, run_dir=str(run_dir)) for t in tasks]
    todo = [t for t in todo if t["key"] not in done]
    # Main comparison first, one seed at a time (a cut-short study still has every method), then the
    # ablations; within those, the pre-training tasks (longest) first.
    todo.sort(key=lambda t: (t["kind"] not in MAIN_KINDS, t["seed"], t["kind"] == "scratch", t["rate"]))
    if args.report_only:
        todo = []
    logger.info("%d tasks to run (%d done) with %d workers", len(todo), len(tasks) - len(todo), args.workers)
    started = time.perf_counter()
    context = multiprocessing.get_context("spawn")
    with context.Pool(max(1, args.workers)) as pool, log_path.open("a", encoding="utf-8") as log:
        for row in pool.imap_unordered(run_task, todo):
            row["wall_s"] = time.perf_counter() - started
            log.write(json.dumps(row) + "\n")
            log.flush()
            done[row["key"]] = row
            accs = ", ".join(f"{r['variant']} {r['test_accuracy']:.3f}" for r in row["rows"])
            logger.info("%s %g%% seed %d%s: %s", row["kind"], row["rate"], row["seed"],
                        f" ({row['param']})" if row["param"] is not None else "", accs)  # fmt: skip
    wanted = {t["key"] for t in tasks}
    results = [row for key, row in done.items() if key in wanted]
    run = {"argv": argv, "workers": args.workers, "wall_s": time.perf_counter() - started,
           "cpus": os.cpu_count(), "settings": settings, "dataset": args.dataset, "pair": args.pair,
           "tasks": len(tasks), "resumed": len(tasks) - len(todo),
           "config": apply_overrides(RunConfig(), settings).to_dict()}  # fmt: skip
    md = write_study(results, out_dir / stem, run)
    print(md.read_text(encoding="utf-8"))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

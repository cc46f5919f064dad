"""``cosmo-edge bench``: latency, FLOPs vs the measured peak, energy, end to end and fine-tuning cost.

Runs ``cosmo_edge.bench.suite`` and writes ``bench.md``, ``bench.json``, ``latency_cdf.png``,
``energy.png``, ``e2e_cdf.png`` and ``finetune.png`` under ``benchmarks/results/<host>-<date>/``
(``--out`` to change). The end-to-end section runs the daemon on the simulator as a subprocess
(``--skip-e2e`` leaves it out); the fine-tuning section times one Cosmo round against DeepSense- and
AttnSense-style training on simulator windows at 1 % and 2 % labels (``--skip-finetune``). ``--quick``
shortens every phase (under a minute on a two-core machine); a full run keeps a >= 10 s idle baseline.
Energy comes only from a real meter (platform.md section 8); without one it is reported as unavailable
with the reason.
"""

import argparse
import logging
from typing import Dict

NAME = "bench"
HELP = "benchmark latency (inference and end to end), FLOPs vs peak, energy, and fine-tuning cost"

logger = logging.getLogger(__name__)

# Phase settings per mode: (full, quick).
MODE_DEFAULTS: Dict[str, tuple] = {
    "duration_s": (20.0, 3.0),
    "idle_s": (10.0, 2.0),
    "warmup": (20, 5),
    "peak_size": (2048, 1024),
    "peak_time_s": (1.0, 0.4),
    "bandwidth_mb": (256, 64),
    "e2e_seconds": (60.0, 10.0),
    "ft_sessions": (9, 2),
    "ft_min_activity_s": (7.0, 4.0),
    "ft_max_activity_s": (13.0, 5.0),
    "ft_epochs": (None, 4),  # None: the daemon's round default
    "ft_t_iter_epochs": (None, 2),
    "ft_repeats": (3, 1),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Model, backends, durations, meter and output options."""
    parser.add_argument("--quick", action="store_true", help="short phases for a smoke run (under a minute)")
    parser.add_argument(
        "--model", help="classifier checkpoint (default: random-weight model of --modalities)"
    )
    parser.add_argument("--modalities", default="imu,skeleton", help="modalities of the default model")
    parser.add_argument(
        "--backends",
        default="torch,onnxruntime,tensorrt",
        help="comma-separated; unavailable ones are reported",
    )
    parser.add_argument(
        "--batch-size", type=int, default=1, help="also time this batch (batch 1, the daemon's, always runs)"
    )
    parser.add_argument("--threads", type=int, default=1, help="intra-op threads of every backend")
    parser.add_argument("--duration-s", type=float, help="timed seconds per backend (default 20, quick 3)")
    parser.add_argument("--max-iterations", type=int, help="stop a backend after this many timed calls")
    parser.add_argument("--idle-s", type=float, help="idle baseline in seconds (default 10, quick 2)")
    parser.add_argument(
        "--meter",
        default="auto",
        choices=["auto", "jetson_ina3221", "tegrastats", "rapl", "none"],
        help="energy meter; auto probes jetson_ina3221, tegrastats, rapl, then none",
    )
    parser.add_argument("--sample-hz", type=float, default=50.0, help="meter sampling rate in Hz")
    parser.add_argument("--sysfs-root", default="/", help="root under which /sys is read (tests, containers)")
    parser.add_argument("--tegrastats-interval-ms", type=int, default=100, help="tegrastats print interval")
    parser.add_argument(
        "--estimate-tdp-w",
        type=float,
        help="also report an energy ESTIMATE from 50%% of this TDP (separate field, never a measurement)",
    )
    parser.add_argument("--skip-e2e", action="store_true", help="leave out the end-to-end daemon section")
    parser.add_argument(
        "--e2e-seconds",
        type=float,
        help="simulator script length of the end-to-end run (default 60, quick 10)",
    )
    parser.add_argument(
        "--e2e-backend",
        default="auto",
        choices=["auto", "onnxruntime", "torch", "tensorrt"],
        help="the daemon's backend in the end-to-end run",
    )
    parser.add_argument("--skip-finetune", action="store_true", help="leave out the fine-tuning section")
    parser.add_argument(
        "--finetune-epochs", type=int, help="epochs per training (default: the daemon's round; quick 4)"
    )
    parser.add_argument(
        "--finetune-repeats", type=int, help="trainings per method and rate, median time (default 3, quick 1)"
    )
    parser.add_argument("--out", help="output folder (default benchmarks/results/<host>-<date>[-quick])")
    parser.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def _config(args: argparse.Namespace):  # -> BenchConfig (imported lazily)
    from cosmo_edge.bench.finetune import FinetuneBenchConfig
    from cosmo_edge.bench.suite import BenchConfig
    from cosmo_edge.energy import MeterOptions

    mode = 1 if args.quick else 0
    value = {key: defaults[mode] for key, defaults in MODE_DEFAULTS.items()}
    for key in ("duration_s", "idle_s", "e2e_seconds"):
        if getattr(args, key) is not None:
            value[key] = getattr(args, key)
    for key in ("epochs", "repeats"):
        if getattr(args, f"finetune_{key}") is not None:
            value[f"ft_{key}"] = getattr(args, f"finetune_{key}")
    finetune = None
    if not args.skip_finetune:
        finetune = FinetuneBenchConfig(
            sessions=value["ft_sessions"],
            min_activity_s=value["ft_min_activity_s"],
            max_activity_s=value["ft_max_activity_s"],
            epochs=value["ft_epochs"],
            t_iter_epochs=value["ft_t_iter_epochs"],
            repeats=value["ft_repeats"],
            progress=not args.no_progress,
        )
    return BenchConfig(
        backends=[b.strip() for b in args.backends.split(",") if b.strip()],
        modalities=[m.strip() for m in args.modalities.split(",") if m.strip()],
        checkpoint=args.model,
        batch_size=args.batch_size,
        duration_s=value["duration_s"],
        max_iterations=args.max_iterations,
        warmup=value["warmup"],
        threads=args.threads,
        idle_s=value["idle_s"],
        meter=args.meter,
        meter_options=MeterOptions(
            sysfs_root=args.sysfs_root, tegrastats_interval_ms=args.tegrastats_interval_ms
        ),
        sample_hz=args.sample_hz,
        peak_size=value["peak_size"],
        peak_time_s=value["peak_time_s"],
        bandwidth_mb=value["bandwidth_mb"],
        estimate_tdp_w=args.estimate_tdp_w,
        quick=args.quick,
        progress=not args.no_progress,
        e2e_seconds=None if args.skip_e2e else value["e2e_seconds"],
        e2e_backend=args.e2e_backend,
        finetune=finetune,
    )


def run(args: argparse.Namespace) -> int:
    """Run the benchmark, print the table, write the results; 2 for bad options, 1 if no backend ran."""
    import sys
    from pathlib import Path

    from cosmo_edge.bench.plots import plot_e2e_cdf, plot_energy, plot_finetune, plot_latency_cdf
    from cosmo_edge.bench.report import default_out_dir, markdown_report, write_report
    from cosmo_edge.bench.suite import run_bench
    from cosmo_edge.energy import MeterUnavailable

    if args.batch_size < 1 or args.threads < 1 or args.sample_hz <= 0:
        print("cosmo-edge bench: --batch-size, --threads and --sample-hz must be positive", file=sys.stderr)
        return 2
    if (args.e2e_seconds is not None and args.e2e_seconds <= 0) or any(
        v is not None and v < 1 for v in (args.finetune_epochs, args.finetune_repeats)
    ):
        print("cosmo-edge bench: --e2e-seconds, --finetune-epochs/-repeats must be positive", file=sys.stderr)
        return 2
    cfg = _config(args)
    try:
        outcome = run_bench(cfg)
    except MeterUnavailable as exc:
        print(f"cosmo-edge bench: meter {args.meter} unavailable: {exc}", file=sys.stderr)
        return 2
    except ValueError as exc:  # unknown modality, bad checkpoint
        print(f"cosmo-edge bench: {exc}", file=sys.stderr)
        return 2
    out_dir = Path(args.out) if args.out else default_out_dir(quick=args.quick)
    paths = write_report(outcome.results, out_dir)
    if not args.no_plots:
        host = outcome.results["machine"]["host"]
        if outcome.latencies_s:
            paths["latency_cdf"] = plot_latency_cdf(
                outcome.latencies_s, out_dir / "latency_cdf.png", f"latency CDF per backend, {host}"
            )
        paths["energy"] = plot_energy(outcome.results, out_dir / "energy.png")
        if outcome.e2e_ms:
            paths["e2e_cdf"] = plot_e2e_cdf(outcome.e2e_ms, out_dir / "e2e_cdf.png", outcome.results)
        if "runs" in outcome.results["finetune"]:
            paths["finetune"] = plot_finetune(outcome.results["finetune"], out_dir / "finetune.png")
    print(markdown_report(outcome.results))
    for kind, path in paths.items():
        print(f"wrote {kind}: {path}")
    return 0 if outcome.latencies_s else 1

"""``cosmo-edge bench``: latency, throughput, FLOPs against the measured peak, and energy per window.

Runs ``cosmo_edge.bench.suite`` and writes ``bench.md``, ``bench.json``, ``latency_cdf.png`` and
``energy.png`` under ``benchmarks/results/<host>-<date>/`` (``--out`` to change). ``--quick`` shortens
every phase (about half a minute on a two-core machine); a full run keeps a >= 10 s idle baseline.
Energy comes only from a real meter (platform.md section 8); without one it is reported as
unavailable with the reason.
"""

import argparse
import logging
from typing import Dict

NAME = "bench"
HELP = "benchmark inference latency, FLOPs vs this machine's peak, and energy per window"

logger = logging.getLogger(__name__)

# Phase settings per mode: (full, quick).
MODE_DEFAULTS: Dict[str, tuple] = {
    "duration_s": (20.0, 3.0),
    "idle_s": (10.0, 2.0),
    "warmup": (20, 5),
    "peak_size": (2048, 1024),
    "peak_time_s": (1.0, 0.4),
    "bandwidth_mb": (256, 64),
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
    parser.add_argument("--batch-size", type=int, default=1, help="windows per predict call")
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
    parser.add_argument("--out", help="output folder (default benchmarks/results/<host>-<date>[-quick])")
    parser.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def _config(args: argparse.Namespace):  # -> BenchConfig (imported lazily)
    from cosmo_edge.bench.suite import BenchConfig
    from cosmo_edge.energy import MeterOptions

    mode = 1 if args.quick else 0
    value = {key: defaults[mode] for key, defaults in MODE_DEFAULTS.items()}
    for key in ("duration_s", "idle_s"):
        if getattr(args, key) is not None:
            value[key] = getattr(args, key)
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
    )


def run(args: argparse.Namespace) -> int:
    """Run the benchmark, print the table, write the results; 2 for bad options, 1 if no backend ran."""
    import sys
    from pathlib import Path

    from cosmo_edge.bench.plots import plot_energy, plot_latency_cdf
    from cosmo_edge.bench.report import default_out_dir, markdown_report, write_report
    from cosmo_edge.bench.suite import run_bench
    from cosmo_edge.energy import MeterUnavailable

    if args.batch_size < 1 or args.threads < 1 or args.sample_hz <= 0:
        print("cosmo-edge bench: --batch-size, --threads and --sample-hz must be positive", file=sys.stderr)
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
    print(markdown_report(outcome.results))
    for kind, path in paths.items():
        print(f"wrote {kind}: {path}")
    return 0 if outcome.latencies_s else 1

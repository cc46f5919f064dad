"""Daemon latency: per-window inference per backend (batch 1) and end-to-end window -> subscriber.

Usage: ``python benchmarks/latency.py [--quick] [--model CKPT] [--e2e-seconds 30]``. Writes
``benchmarks/results/latency.{json,md}`` and prints the table.

1. Inference. Windows are real ones: a simulated session (``cosmo_edge.bundled.simdata``: IMU 100 Hz,
   depth 30 fps 640 x 480, radar 20 Hz) pushed through the daemon's rings and cut every 0.5 s, as
   live. Each engine classifies the windows in order, through the daemon's ``WindowPredictor``
   (normalisation included), timed with ``time.perf_counter``: torch eager (the baseline), torch eager
   with the per-frame depth/radar feature cache, ONNX Runtime, and TensorRT where it imports (else
   listed as skipped with the reason). Caches start cold at every pass; the first window of a pass is
   not timed. All engines use one intra-op thread, as the daemon does.
2. End to end (``cosmo_edge.bench.e2e``, shared with ``cosmo-edge bench``). The daemon runs as its
   own process (``cosmo-edge run`` on the simulator with the bundled config, real drivers), once per
   engine; this process subscribes and stamps each
   ``activity.window`` on receipt with ``time.monotonic_ns`` (the same clock the daemon stamps with).
   Reported: receipt - due time (the window's end + ``delay_s``: when it could first be cut) and
   receipt - the window's newest sample (this includes ``delay_s``, the deliberate wait for samples
   still in flight, and the hop grid).

Targets on this 2-core CPU: ONNX Runtime >= 3x faster than eager torch; inference p99 <= 2 ms; end to
end (receipt - due) p99 <= 20 ms. The machine is shared; its load average is recorded, and each
inference row also gives the inference thread's CPU time (``time.thread_time``), which other
processes cannot inflate.
"""

import argparse
import json
import logging
import os
import pathlib
import platform
import sys
import tempfile
import time
from typing import Any, Dict, List

import numpy as np

from cosmo_edge.bench.e2e import run_daemon_e2e
from cosmo_edge.bundled import SIM_MODEL
from cosmo_edge.bundled.simdata import SimDataConfig, fill_channels, session_script
from cosmo_edge.daemon.predictor import WindowPredictor
from cosmo_edge.daemon.wiring import WindowTiming, make_cutter

logger = logging.getLogger("benchmarks.latency")

RESULTS_DIR = pathlib.Path(__file__).resolve().parent / "results"
REPO = pathlib.Path(__file__).resolve().parent.parent
ENGINES = (  # (label, backend, frame cache)
    ("torch eager", "torch", "off"),
    ("torch eager + frame cache", "torch", "on"),
    ("onnxruntime", "onnxruntime", "off"),
    ("tensorrt", "tensorrt", "off"),
)


def recorded_windows(sessions: int, seed: int) -> List[Any]:
    """[(channels, windows)] per simulated session: windows cut every 0.5 s, in order."""
    from drivers.sim import body
    from drivers.sim.motion import ScriptedMotion
    from drivers.sim.script import build_segments

    config = SimDataConfig(seed=seed)
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(sessions):
        source = ScriptedMotion(build_segments(session_script(rng, config), body.ACTIVITIES))
        channels, rates = fill_channels(source, config, rng)
        cutter = make_cutter(config.modalities, channels, rates, WindowTiming(2.0, 0.5, 0.0))
        newest = min(ch.ring.newest_ns for ch in channels.values())
        first = min(int(ch.ring.read_latest(ch.ring.capacity)[0][0]) for ch in channels.values())
        ends = range(first + 2 * 10**9, newest, 5 * 10**8)
        out.append((channels, [cutter.cut(end) for end in ends]))
    return out


def make_engine(model: pathlib.Path, backend: str, frame_cache: str, cache_dir: str) -> WindowPredictor:
    """Load ``model`` on ``backend`` (one thread) and wrap it as the daemon does."""
    import models.radar  # noqa: F401  (registers the radar encoder)
    from cosmo_edge.runtime import create_backend, load_artifact

    artifact = load_artifact(model)
    engine = create_backend(backend, threads=1, cache_dir=cache_dir)
    engine.load(artifact)
    engine.warmup(iterations=10)
    return WindowPredictor(artifact, engine, frame_cache=frame_cache)


def time_engine(predictor: WindowPredictor, sessions: List[Any], passes: int) -> Dict[str, Any]:
    """Per-window predict latency (ms) over every session's windows in order, ``passes`` times."""
    times: List[float] = []
    cpu: List[float] = []
    for _ in range(passes):
        for channels, windows in sessions:
            if predictor.cached is not None:
                for cache in predictor.cached.caches.values():
                    cache.clear()
            for index, window in enumerate(windows):
                started, cpu_started = time.perf_counter(), time.thread_time()
                predictor.predict(window, channels)
                if index:
                    times.append((time.perf_counter() - started) * 1e3)
                    cpu.append((time.thread_time() - cpu_started) * 1e3)
    arr = np.array(times)
    row: Dict[str, Any] = {"windows": len(arr)}
    row.update({f"p{q}": round(float(np.percentile(arr, q)), 3) for q in (50, 90, 99)})
    row["mean"] = round(float(arr.mean()), 3)
    row["cpu"] = {f"p{q}": round(float(np.percentile(cpu, q)), 3) for q in (50, 99)}
    if predictor.cached is not None:
        frames = predictor.cached.counters()
        row["frame_cache"] = frames
        row["frames_computed_fraction"] = {
            m: round(c["misses"] / max(1, c["hits"] + c["misses"]), 3) for m, c in frames.items()
        }
    return row


def inference_rows(model: pathlib.Path, sessions: List[Any], passes: int, cache_dir: str) -> Dict[str, Any]:
    """One row per engine (or the reason it was skipped)."""
    from cosmo_edge.runtime import BackendUnavailable

    rows: Dict[str, Any] = {}
    for label, backend, frame_cache in ENGINES:
        try:
            predictor = make_engine(model, backend, frame_cache, cache_dir)
        except BackendUnavailable as exc:
            rows[label] = {"skipped": str(exc)}
            continue
        rows[label] = time_engine(predictor, sessions, passes)
        logger.info("%s: %s", label, rows[label])
    return rows


def e2e_row(model: pathlib.Path, backend: str, frame_cache: str, seconds: float, tmp: str) -> Dict[str, Any]:
    """Run the daemon for ``seconds`` of script on ``backend`` (``cosmo_edge.bench.e2e``); its delays."""
    result = run_daemon_e2e(model, pathlib.Path(tmp), seconds, backend=backend, frame_cache=frame_cache)
    if "error" in result:
        return {"error": result["error"]}
    row: Dict[str, Any] = {"windows": result["windows"], "lost": result["lost"], "engine": result["engine"]}
    for name in ("due_to_receipt", "newest_sample_to_receipt", "predict"):
        summary = result[f"{name}_ms"]
        if summary["n"]:
            row[name] = {key: summary[key] for key in ("p50", "p90", "p99", "max")}
    return row


def write_results(payload: Dict[str, Any]) -> None:
    """Print the table and write JSON + Markdown under benchmarks/results/."""
    inference, e2e = payload["inference_ms"], payload["end_to_end_ms"]
    base = inference.get("torch eager", {}).get("p50")
    lines = [
        f"{'engine':<27} {'p50 ms':>8} {'p99 ms':>8} {'cpu p99':>8} {'speed-up p50':>13}   "
        "end-to-end due->recv p50/p99 ms, newest sample->recv p50/p99 ms"
    ]
    for label, row in inference.items():
        if "skipped" in row:
            lines.append(f"{label:<27} skipped: {row['skipped']}")
            continue
        speed = f"{base / row['p50']:.2f}x" if base else "-"
        e = e2e.get(label, {})
        due, new = e.get("due_to_receipt", {}), e.get("newest_sample_to_receipt", {})
        e2e_text = f"{due.get('p50', '-')}/{due.get('p99', '-')}, {new.get('p50', '-')}/{new.get('p99', '-')}"
        if "error" in e:
            e2e_text = e["error"][:60]
        cpu_p99 = row["cpu"]["p99"]
        lines.append(
            f"{label:<27} {row['p50']:>8.3f} {row['p99']:>8.3f} {cpu_p99:>8.3f} {speed:>13}   {e2e_text}"
        )
    print("\n".join(lines))
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    (RESULTS_DIR / "latency.json").write_text(json.dumps(payload, indent=1) + "\n", encoding="utf-8")
    machine = payload["machine"]
    md = [
        "# Daemon latency (`benchmarks/latency.py`)",
        "",
        f"Machine: {machine['processor']}, {machine['cpu_count']} CPUs, Python {machine['python']}; "
        f"load average at start {machine['load_average_at_start']} (shared machine). "
        f"Model {payload['model']} (IMU + depth + radar), batch 1, one intra-op thread.",
        "",
        "```",
        *lines,
        "```",
        "",
        "Inference: `WindowPredictor.predict` on real simulated windows (normalisation included), caches",
        "cold at each pass; p50/p99 are wall time (`perf_counter`), `cpu p99` the inference thread's own",
        "CPU time (`thread_time`): the gap between them is time the thread waited for a core that other",
        "processes on this shared 2-core machine held. End to end: the daemon as its own process on the",
        "simulator, this process subscribed; `due->recv` = receipt minus the window's end + delay_s (when",
        "it could first be cut), `newest sample->recv` = receipt minus the window's newest sample",
        "(includes delay_s = 0.1 s, the deliberate wait for samples in flight, and the hop grid).",
        "",
        f"Targets: {json.dumps(payload['targets'])}",
    ]
    (RESULTS_DIR / "latency.md").write_text("\n".join(md) + "\n", encoding="utf-8")
    print(f"wrote {RESULTS_DIR / 'latency.json'} and latency.md")


def targets(payload: Dict[str, Any]) -> Dict[str, Any]:
    """Each target with the measured value and whether it was met."""
    inf, e2e = payload["inference_ms"], payload["end_to_end_ms"]
    out: Dict[str, Any] = {}
    eager, ort = inf.get("torch eager", {}), inf.get("onnxruntime", {})
    if "p50" in eager and "p50" in ort:
        ratio = eager["p50"] / ort["p50"]
        out["onnxruntime_speedup_vs_eager_p50 >= 3"] = {"value": round(ratio, 2), "met": ratio >= 3}
    best = min((r["p99"] for r in inf.values() if "p99" in r), default=None)
    if best is not None:
        out["best_inference_p99_ms <= 2"] = {"value": best, "met": best <= 2.0}
        best_cpu = min(r["cpu"]["p99"] for r in inf.values() if "cpu" in r)
        out["best_inference_cpu_time_p99_ms <= 2 (not wall time)"] = {
            "value": best_cpu,
            "met": best_cpu <= 2.0,
        }
    e2e_p99 = [r["due_to_receipt"]["p99"] for r in e2e.values() if "due_to_receipt" in r]
    if e2e_p99:
        out["best_end_to_end_p99_ms <= 20"] = {"value": min(e2e_p99), "met": min(e2e_p99) <= 20.0}
    return out


def _short_path(path: pathlib.Path) -> str:
    """``path`` relative to the repository when it lies inside it."""
    try:
        return str(path.resolve().relative_to(REPO))
    except ValueError:
        return str(path)


def _cpu_model() -> str:
    """The CPU model from /proc/cpuinfo on Linux, else platform.processor()."""
    try:
        text = pathlib.Path("/proc/cpuinfo").read_text(encoding="utf-8")
    except OSError:
        text = ""
    for line in text.splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--model", type=pathlib.Path, default=SIM_MODEL, help="checkpoint (IMU + depth + radar)"
    )
    parser.add_argument("--sessions", type=int, default=2, help="simulated sessions of windows for inference")
    parser.add_argument("--passes", type=int, default=3, help="passes over the windows per engine")
    parser.add_argument(
        "--e2e-seconds", type=float, default=30.0, help="script length per end-to-end run (s)"
    )
    parser.add_argument("--quick", action="store_true", help="one session, one pass, 15 s end-to-end runs")
    parser.add_argument("--log-level", default="WARNING", help="logging threshold")
    args = parser.parse_args()
    logging.basicConfig(level=getattr(logging, args.log_level), format="%(levelname)s %(name)s: %(message)s")
    import torch

    torch.set_num_threads(1)
    if args.quick:
        args.sessions, args.passes, args.e2e_seconds = 1, 1, 15.0
    load = [round(v, 2) for v in os.getloadavg()]
    sessions = recorded_windows(args.sessions, seed=7)
    with tempfile.TemporaryDirectory(prefix="cosmo-latency-") as tmp:
        inference = inference_rows(args.model, sessions, args.passes, tmp)
        e2e = {}
        for label, backend, frame_cache in ENGINES:
            if "skipped" not in inference.get(label, {"skipped": ""}):
                e2e[label] = e2e_row(args.model, backend, frame_cache, args.e2e_seconds, tmp)
                logger.info("end to end %s: %s", label, e2e[label])
    payload: Dict[str, Any] = {
        "model": _short_path(args.model),
        "machine": {
            "python": platform.python_version(),
            "processor": _cpu_model(),
            "cpu_count": os.cpu_count(),
            "load_average_at_start": load,
            "torch": str(torch.__version__),
        },
        "inference_ms": inference,
        "end_to_end_ms": e2e,
        "settings": {"sessions": args.sessions, "passes": args.passes, "e2e_seconds": args.e2e_seconds},
    }
    payload["targets"] = targets(payload)
    write_results(payload)
    return 0


if __name__ == "__main__":
    sys.exit(main())

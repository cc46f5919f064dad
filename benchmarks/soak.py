"""Soak: the daemon on the built-in simulator at 10x real time for a bounded time, watched from outside.

Usage: ``python benchmarks/soak.py [--duration-s 600] [--speed 10] [--sample-s 5] [--quick]``.
``cosmo-edge run`` runs as a subprocess on the bundled simulator config and model (IMU 100 Hz over a
pty, TI radar 20 Hz over ptys, depth 640 x 480 at 30 fps from a pyrealsense2 software device, all
through the real drivers; ``--speed`` times faster, so 10x means 1000 IMU lines, 200 radar packets
and 300 depth frames per second, and 20 windows per second to classify). The script repeats so it
outlasts the run.

Every ``--sample-s`` seconds (after the first window arrived) one sample is taken, from outside the
daemon only:

- memory: ``VmRSS`` of the daemon process (``/proc/<pid>/status``) and its CPU share
  (``/proc/<pid>/stat``);
- from ``/metrics``: samples lost between driver and window cutter (``stream_drops_total``),
  frames lost before the driver (``stream_frames_lost_total``: frame-number gaps), bad frames
  (``stream_frames_bad_total``), windows cut, masked modalities, publisher drops, each as its
  increase since the first window (start-up and timebase warm-up are not counted);
- from a ZeroMQ subscriber: windows received per second, ``seq`` gaps, the predict latency each
  window carries (``latency_ms``: p50/p95/p99 of the interval) and the end-to-end latency from the
  window being due to its arrival at the subscriber (host monotonic clock, same machine).

Verdict on memory: a least-squares line through RSS over the second half of the run (the first half
covers warm-up: allocator arenas, caches, ONNX Runtime's memory pattern); its slope in MiB per minute
must stay under ``--bound-mib-per-min`` (default 1.0, i.e. under 1.4 GiB a day, against the TX2's
8 GB; a leak in the per-window path at 20 windows/s shows up far above it). A second half shorter than
two minutes is too short to judge and is reported as such. Writes ``soak.json``, ``soak.md`` and
``soak.png`` (``soak_quick.*`` with ``--quick``) under ``--out`` (default ``benchmarks/results``).
Exit status: 0 when the daemon ran, stopped cleanly and the verdict is not a failure; else 1.
"""

import argparse
import json
import os
import pathlib
import platform
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import yaml

REPO = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from cosmo_edge.bundled import SIM_CONFIG, SIM_MODEL  # noqa: E402
from cosmo_edge.publish import unpack_message  # noqa: E402

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from soak_report import plot, write_markdown  # noqa: E402

RESULTS_DIR = REPO / "benchmarks" / "results"
QUICK_DURATION_S = 30.0
QUICK_SAMPLE_S = 2.0
MIN_JUDGED_S = 120.0  # a second half shorter than this is not judged
START_TIMEOUT_S = 180.0
_METRIC_RE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)$")
CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def write_config(folder: pathlib.Path, speed: float, duration_s: float, backend: str) -> pathlib.Path:
    """The bundled simulator config at ``speed`` with a script longer than the run; returns its path."""
    config = yaml.safe_load(SIM_CONFIG.read_text(encoding="utf-8"))
    script = config["simulator"]["script"]
    script_s = sum(float(part.split(":")[1]) for part in script.split(","))
    repeats = int(np.ceil((duration_s + 120.0) * speed / script_s)) + 1
    config["simulator"].update(script=",".join([script] * repeats), speed=speed, ground_truth_file=None)
    config["model"].update(path=str(SIM_MODEL), backend=backend)
    config["publish"]["endpoint"] = f"tcp://127.0.0.1:{free_port()}"
    config["health"] = {"host": "127.0.0.1", "port": free_port()}
    config["state_dir"] = str(folder / "state")
    path = folder / "soak.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


class Subscriber(threading.Thread):
    """Collects (receive ns, seq, predict ms, due ns) of every ``activity.window``."""

    def __init__(self, endpoint: str) -> None:
        import zmq

        super().__init__(name="soak-sub", daemon=True)
        self.context = zmq.Context()
        self.sub = self.context.socket(zmq.SUB)
        self.sub.setsockopt(zmq.RCVHWM, 100000)
        self.sub.setsockopt(zmq.LINGER, 0)
        self.sub.setsockopt(zmq.SUBSCRIBE, b"activity.window")
        self.sub.connect(endpoint)
        self.rows: List[Tuple[int, int, float, int]] = []
        self.lock = threading.Lock()
        self.stop_event = threading.Event()

    def run(self) -> None:
        while not self.stop_event.is_set():
            if not self.sub.poll(100):
                continue
            _, body = unpack_message(self.sub.recv_multipart())
            row = (time.monotonic_ns(), int(body["seq"]), float(body["latency_ms"]), int(body["due_ns"]))
            with self.lock:
                self.rows.append(row)

    def take(self) -> List[Tuple[int, int, float, int]]:
        with self.lock:
            rows, self.rows = self.rows, []
        return rows

    def close(self) -> None:
        self.stop_event.set()
        self.join(2.0)
        self.sub.close(linger=0)
        self.context.term()


def scrape(port: int) -> Dict[str, float]:
    """``/metrics`` as {``name{labels}``: value}."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode("utf-8")
    values: Dict[str, float] = {}
    for line in text.splitlines():
        match = _METRIC_RE.match(line)
        if match:
            values[match.group(1) + (match.group(2) or "")] = float(match.group(3))
    return values


def metric_sum(values: Dict[str, float], name: str) -> float:
    """Sum of ``name`` over all its label sets."""
    return sum(v for k, v in values.items() if k == name or k.startswith(name + "{"))


def proc_memory(pid: int) -> Dict[str, int]:
    """VmRSS and VmHWM of ``pid`` in bytes."""
    out = {}
    with open(f"/proc/{pid}/status", encoding="ascii") as handle:
        for line in handle:
            key = line.split(":")[0]
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(line.split()[1]) * 1024
    return out


def proc_cpu_s(pid: int) -> float:
    """User + system CPU seconds of ``pid`` (all threads)."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def percentiles(values: List[float]) -> Dict[str, Optional[float]]:
    if not values:
        return {"p50": None, "p95": None, "p99": None}
    p50, p95, p99 = np.percentile(np.asarray(values), [50, 95, 99])
    return {"p50": round(float(p50), 3), "p95": round(float(p95), 3), "p99": round(float(p99), 3)}


def counters(values: Dict[str, float]) -> Dict[str, float]:
    """The cumulative counters a sample reports (as increases since the first window)."""
    return {
        "drops_total": metric_sum(values, "cosmo_edge_stream_drops_total"),
        "frames_lost_total": metric_sum(values, "cosmo_edge_stream_frames_lost_total"),
        "frames_bad_total": metric_sum(values, "cosmo_edge_stream_frames_bad_total"),
        "windows_total": metric_sum(values, "cosmo_edge_windows_total"),
        "modality_missing_total": metric_sum(values, "cosmo_edge_modality_missing_total"),
        "publish_dropped_total": metric_sum(values, "cosmo_edge_publish_dropped_total"),
    }


def label_deltas(before: Dict[str, float], after: Dict[str, float], name: str) -> Dict[str, float]:
    """Increase of each label set of ``name`` (labels as written on /metrics), zero ones left out."""
    out = {}
    for key, value in after.items():
        if key.startswith(name + "{") and value - before.get(key, 0.0) > 0:
            out[key[len(name) :]] = value - before.get(key, 0.0)
    return out


def take_sample(
    pid: int, port: int, sub: Subscriber, t0_ns: int, last: Dict[str, Any], all_rows: List[Any]
) -> Dict[str, Any]:
    """One row of the time series (see the module docstring)."""
    now_ns = time.monotonic_ns()
    rows = sub.take()
    all_rows.extend(rows)
    memory = proc_memory(pid)
    cpu_s = proc_cpu_s(pid)
    values = scrape(port)
    interval_s = (now_ns - last["ns"]) * 1e-9
    seqs = [r[1] for r in rows]
    gaps = (
        sum(max(0, b - a - 1) for a, b in zip([last["seq"]] + seqs, seqs)) if last["seq"] is not None else 0
    )
    sample = {
        "t_s": round((now_ns - t0_ns) * 1e-9, 2),
        "rss_mib": round(memory["VmRSS"] / 2**20, 2),
        "hwm_mib": round(memory["VmHWM"] / 2**20, 2),
        "cpu_percent": round(100.0 * (cpu_s - last["cpu_s"]) / interval_s, 1),
        "windows_per_s": round(len(rows) / interval_s, 2),
        "seq_gaps_total": last["gaps"] + gaps,
        "predict_ms": percentiles([r[2] for r in rows]),
        "e2e_ms": percentiles([(r[0] - r[3]) * 1e-6 for r in rows]),
    }
    sample.update({key: value - last["base"][key] for key, value in counters(values).items()})
    last.update(
        values=values,
        ns=now_ns,
        cpu_s=cpu_s,
        gaps=sample["seq_gaps_total"],
        seq=seqs[-1] if seqs else last["seq"],
    )
    return sample


def memory_verdict(samples: List[Dict[str, Any]], bound: float) -> Dict[str, Any]:
    """Slope of RSS (MiB/min) over the second half, against ``bound``."""
    t = np.array([s["t_s"] for s in samples])
    rss = np.array([s["rss_mib"] for s in samples])
    half = t >= t[-1] / 2.0 if len(t) else t
    span_s = float(t[half][-1] - t[half][0]) if half.sum() >= 2 else 0.0
    verdict: Dict[str, Any] = {"bound_mib_per_min": bound, "second_half_s": round(span_s, 1)}
    if half.sum() < 3:
        return dict(verdict, slope_mib_per_min=None, judged=False, passed=None)
    slope_per_s = float(np.polyfit(t[half], rss[half], 1)[0])
    verdict.update(slope_mib_per_min=round(slope_per_s * 60.0, 3), judged=span_s >= MIN_JUDGED_S)
    verdict["passed"] = (slope_per_s * 60.0 <= bound) if verdict["judged"] else None
    return verdict


def run_soak(args: argparse.Namespace) -> Dict[str, Any]:
    """Start the daemon, sample it for ``duration_s``, stop it; the result dict."""
    with tempfile.TemporaryDirectory(prefix="cosmo-soak-") as tmp:
        folder = pathlib.Path(tmp)
        config_path = write_config(folder, args.speed, args.duration_s, args.backend)
        config = yaml.safe_load(config_path.read_text(encoding="utf-8"))
        port = config["health"]["port"]
        sub = Subscriber(config["publish"]["endpoint"])
        sub.start()
        log_path = folder / "daemon.log"
        load_at_start = [round(x, 2) for x in os.getloadavg()]
        with log_path.open("w") as log:
            command = [sys.executable, "-m", "cosmo_edge", "run", "--config", str(config_path)]
            proc = subprocess.Popen(command, cwd=str(REPO), stdout=log, stderr=log)
        samples: List[Dict[str, Any]] = []
        all_rows: List[Any] = []
        exit_status: Optional[int] = None
        try:
            deadline = time.monotonic() + START_TIMEOUT_S
            while not sub.rows and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.2)
            if not sub.rows:
                raise RuntimeError(f"no window within {START_TIMEOUT_S} s:\n{log_path.read_text()[-3000:]}")
            t0_ns = time.monotonic_ns()
            sub.take()
            base_values = scrape(port)
            base = counters(base_values)  # counters report increases from here (after warm-up)
            last = {"ns": t0_ns, "cpu_s": proc_cpu_s(proc.pid), "gaps": 0, "seq": None, "base": base}
            last["values"] = base_values
            end = time.monotonic() + args.duration_s
            while time.monotonic() < end and proc.poll() is None:
                time.sleep(min(args.sample_s, max(0.0, end - time.monotonic())))
                samples.append(take_sample(proc.pid, port, sub, t0_ns, last, all_rows))
                if args.verbose:
                    x = samples[-1]
                    print(
                        f"{x['t_s']:7.1f} s  RSS {x['rss_mib']:7.1f} MiB  {x['windows_per_s']:5.1f} win/s  "
                        f"predict p99 {x['predict_ms']['p99']} ms  drops {x['drops_total']:.0f}",
                        flush=True,
                    )
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
            try:
                exit_status = proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                exit_status = proc.wait()
            sub.close()
        missing = label_deltas(base_values, last["values"], "cosmo_edge_modality_missing_total")
        drops = label_deltas(base_values, last["values"], "cosmo_edge_stream_drops_total")
        lost = label_deltas(base_values, last["values"], "cosmo_edge_stream_frames_lost_total")
        backend = "?"
        for line in log_path.read_text(encoding="utf-8", errors="replace").splitlines():
            if "cosmo_edge.daemon.app: started:" in line:  # "started: imu open, ...; onnxruntime; ..."
                backend = line.rsplit("started:", 1)[1].split(";")[1].strip()
    cpu = [s["cpu_percent"] for s in samples]
    last_sample = samples[-1] if samples else {}
    summary = {
        "backend": backend,
        "exit_status": exit_status,
        "samples": len(samples),
        "rss_first_mib": samples[0]["rss_mib"] if samples else None,
        "rss_last_mib": last_sample.get("rss_mib"),
        "rss_max_mib": max((s["rss_mib"] for s in samples), default=None),
        "windows_received": len(all_rows),
        "windows_per_s": round(len(all_rows) / max(1e-9, samples[-1]["t_s"]), 2) if samples else 0.0,
        "seq_gaps": last_sample.get("seq_gaps_total", 0),
        "predict_ms": percentiles([r[2] for r in all_rows]),
        "e2e_ms": percentiles([(r[0] - r[3]) * 1e-6 for r in all_rows]),
        "cpu_percent_mean": round(float(np.mean(cpu)), 1) if cpu else None,
    }
    for key in (
        "drops_total",
        "frames_lost_total",
        "frames_bad_total",
        "windows_total",
        "modality_missing_total",
    ):
        summary[key] = last_sample.get(key, 0.0)
    summary["publish_dropped_total"] = last_sample.get("publish_dropped_total", 0.0)
    summary["missing_by_reason"] = missing
    summary["drops_by_stream"] = drops
    summary["frames_lost_by_stream"] = lost
    run = {
        "speed": args.speed,
        "duration_s": args.duration_s,
        "sample_s": args.sample_s,
        "quick": args.quick,
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
        "load_at_start": load_at_start,
        "started_unix_s": round(time.time() - (samples[-1]["t_s"] if samples else 0.0)),
    }
    return {
        "run": run,
        "summary": summary,
        "verdict": memory_verdict(samples, args.bound_mib_per_min),
        "samples": samples,
    }


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--duration-s", type=float, help="seconds to sample after the first window (default 600)"
    )
    parser.add_argument("--speed", type=float, default=10.0, help="simulator speed factor (default 10)")
    parser.add_argument("--sample-s", type=float, help="seconds between samples (default 5)")
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_DURATION_S:.0f} s, a sample every 2 s")
    parser.add_argument("--bound-mib-per-min", type=float, default=1.0, help="largest accepted RSS slope")
    parser.add_argument(
        "--backend", default="auto", help="model.backend (auto, onnxruntime, torch, tensorrt)"
    )
    parser.add_argument("--out", type=pathlib.Path, default=RESULTS_DIR, help="folder for the results")
    parser.add_argument("--verbose", action="store_true", help="print every sample")
    args = parser.parse_args(argv)
    if args.duration_s is None:
        args.duration_s = QUICK_DURATION_S if args.quick else 600.0
    if args.sample_s is None:
        args.sample_s = QUICK_SAMPLE_S if args.quick else 5.0
    if args.duration_s <= 0 or args.sample_s <= 0:
        parser.error("--duration-s and --sample-s must be positive")
    result = run_soak(args)
    stem = "soak_quick" if args.quick else "soak"
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{stem}.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    title = f"cosmo-edge soak: {args.speed:g}x simulator, {args.duration_s:.0f} s"
    plot(result["samples"], args.out / f"{stem}.png", title)
    write_markdown(result, args.out / f"{stem}.md", f"{stem}.png")
    verdict, summary = result["verdict"], result["summary"]
    print(
        f"soak: {summary['samples']} samples, RSS {summary['rss_first_mib']} -> "
        f"{summary['rss_last_mib']} MiB, slope {verdict['slope_mib_per_min']} MiB/min "
        f"(bound {verdict['bound_mib_per_min']}, passed {verdict['passed']}), "
        f"{summary['windows_per_s']} windows/s, predict p99 {summary['predict_ms']['p99']} ms, "
        f"drops {summary['drops_total']:.0f}, exit {summary['exit_status']}"
    )
    ok = summary["exit_status"] == 0 and summary["samples"] > 0 and verdict["passed"] is not False
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

"""End-to-end latency: a window's newest sample to its ``activity.window`` message at a subscriber.

``run_daemon_e2e`` starts the daemon as its own process (``python -m cosmo_edge run`` on the
simulator: the bundled simulator config with a short script, a free loopback endpoint and a
temporary state folder; real drivers over ptys, real ZeroMQ), subscribes from this process and stamps
each ``activity.window`` on receipt with ``time.monotonic_ns`` (the clock the daemon stamps with).
It runs until the script ends and the daemon exits. Three delays per window, in ms:

- ``newest_sample_to_receipt``: receipt minus the window's newest sample. It includes ``delay_s``
  (the deliberate wait for samples still in flight) and the hop grid, so it is what a user sees;
- ``due_to_receipt``: receipt minus the window's end + ``delay_s`` (when it could first be cut):
  the daemon's own cost (cut, predict, publish, transport);
- ``predict``: the daemon's own timing of the inference call (from the message).

The daemon's CPU seconds come from ``getrusage(RUSAGE_CHILDREN)`` around the run (the only child
reaped in that time), and the engine it used from its last ``status`` message.
"""

import logging
import resource
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
import yaml

logger = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parent.parent.parent
SCRIPT_ACTIVITIES = ("stand_still", "walk", "wave", "clap", "squat", "sit")
E2E_PERCENTILES = (50, 90, 99)
STARTUP_ALLOWANCE_S = 60.0  # process start, imports, model load, sensor warm-up


def free_endpoint() -> str:
    """A ``tcp://127.0.0.1:<port>`` endpoint on a port that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"tcp://127.0.0.1:{sock.getsockname()[1]}"


def script_for(seconds: float, activities: Sequence[str] = SCRIPT_ACTIVITIES) -> str:
    """A simulator script of ``seconds`` in total, split evenly over ``activities``."""
    if seconds <= 0:
        raise ValueError("seconds must be positive")
    per_s = seconds / len(activities)
    return ",".join(f"{a}:{per_s:.2f}" for a in activities)


def daemon_config(model: Path, endpoint: str, script: str, state_dir: str) -> Dict[str, Any]:
    """The bundled simulator config with this run's model, endpoint, script and state folder."""
    from cosmo_edge.bundled import SIM_CONFIG

    config = yaml.safe_load(SIM_CONFIG.read_text(encoding="utf-8"))
    config["simulator"].update(script=script, ground_truth_file=None)
    config["model"]["path"] = str(model)
    config["publish"]["endpoint"] = endpoint
    config["state_dir"] = state_dir
    return config


def delay_summary(values_ms: Sequence[float]) -> Dict[str, Any]:
    """``{n, p50, p90, p99, max, mean}`` of delays in ms (``{"n": 0}`` when there are none)."""
    if len(values_ms) == 0:
        return {"n": 0}
    arr = np.asarray(values_ms, dtype=float)
    summary: Dict[str, Any] = {"n": int(arr.size)}
    summary.update({f"p{q}": round(float(np.percentile(arr, q)), 3) for q in E2E_PERCENTILES})
    summary.update({"max": round(float(arr.max()), 3), "mean": round(float(arr.mean()), 3)})
    return summary


class _Recorder:
    """Receives the daemon's messages into a ``LiveView`` and keeps the three delays per window."""

    def __init__(self, endpoint: str) -> None:
        from cosmo_edge.daemon.view import LiveView

        self.view = LiveView(endpoint)
        self.due_ms: List[float] = []
        self.newest_ms: List[float] = []
        self.predict_ms: List[float] = []

    def handle(self, topic: str, message: Dict[str, Any], receipt_ns: Optional[int] = None) -> None:
        receipt_ns = time.monotonic_ns() if receipt_ns is None else receipt_ns
        self.view.handle(topic, message, receipt_ns)
        if topic != "activity.window":
            return
        if message.get("due_ns"):
            self.due_ms.append((receipt_ns - int(message["due_ns"])) * 1e-6)
        if message.get("last_sample_ns"):
            self.newest_ms.append((receipt_ns - int(message["last_sample_ns"])) * 1e-6)
        if message.get("latency_ms") is not None:
            self.predict_ms.append(float(message["latency_ms"]))

    def engine(self) -> Optional[str]:
        status = self.view.status or {}
        return (status.get("inference") or {}).get("engine") or status.get("backend")


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_daemon_e2e(
    model: Path,
    work_dir: Path,
    seconds: float,
    backend: str = "auto",
    frame_cache: Optional[str] = None,
) -> Dict[str, Any]:
    """Run the daemon on ``seconds`` of simulator script; return delays (raw and summarised) and facts.

    The result has ``windows`` (messages received), ``lost`` (sequence gaps), ``engine``,
    ``wall_s`` (process start to exit), ``daemon_cpu_s``, and per delay kind a ``<kind>_ms`` summary
    and the raw values under ``_raw_ms`` (for plots; the caller drops them before writing JSON).
    On a daemon failure it has ``error`` with the tail of the daemon's stderr instead.
    """
    from cosmo_edge.daemon.subscriber import watch

    work_dir.mkdir(parents=True, exist_ok=True)
    endpoint = free_endpoint()
    tag = f"{backend}-{frame_cache or 'default'}"
    config_path = work_dir / f"e2e-{tag}.yaml"
    config = daemon_config(model, endpoint, script_for(seconds), str(work_dir / f"state-{tag}"))
    config_path.write_text(yaml.safe_dump(config), encoding="utf-8")
    recorder = _Recorder(endpoint)
    stop = threading.Event()
    listener = threading.Thread(
        target=watch, args=(endpoint, recorder, None, stop), name="e2e-subscriber", daemon=True
    )
    listener.start()
    command = [
        sys.executable,
        "-m",
        "cosmo_edge",
        "--log-level",
        "WARNING",
        "run",
        "--config",
        str(config_path),
    ]
    command += ["--backend", backend, "--health-port", "0"]
    if frame_cache is not None:
        command += ["--frame-cache", frame_cache]
    cpu_before = _children_cpu_s()
    started = time.perf_counter()
    proc = subprocess.Popen(command, cwd=str(REPO), stderr=subprocess.PIPE, text=True)
    err = ""
    try:
        _, err = proc.communicate(timeout=seconds + STARTUP_ALLOWANCE_S)
    except subprocess.TimeoutExpired:
        logger.error("daemon still running %.0f s after its script; stopping it", STARTUP_ALLOWANCE_S)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        stop.set()
        listener.join(5)
    wall_s = time.perf_counter() - started
    result: Dict[str, Any] = {
        "backend_asked": backend,
        "frame_cache": frame_cache,
        "script_s": seconds,
        "wall_s": round(wall_s, 3),
        "daemon_cpu_s": round(_children_cpu_s() - cpu_before, 3),
        "windows": len(recorder.due_ms),
        "lost": recorder.view.gaps,
        "engine": recorder.engine(),
    }
    if proc.returncode != 0:
        result["error"] = f"daemon exited {proc.returncode}: {(err or '')[-500:]}"
        return result
    raw = {
        "newest_sample_to_receipt": recorder.newest_ms,
        "due_to_receipt": recorder.due_ms,
        "predict": recorder.predict_ms,
    }
    for kind, values in raw.items():
        result[f"{kind}_ms"] = delay_summary(values)
    result["_raw_ms"] = raw
    return result

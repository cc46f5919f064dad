"""The round as a supervised, low-priority worker process: ``python -m cosmo_edge.finetune.worker SPEC``.

Why a process: a training thread inside the daemon competes with inference for the GIL between
torch ops and for the cores at the same priority; a separate process at a higher niceness with
bounded torch threads leaves the scheduler free to prefer inference (docs/learning.md has the
measurements). The worker:

- asks the kernel to kill it when its parent dies (``PR_SET_PDEATHSIG``), so a ``kill -9`` of the
  daemon never leaves a trainer writing into the state directory behind it;
- raises its niceness by ``nice`` and (Linux) moves to the ``SCHED_IDLE`` class, bounds torch to
  ``threads`` intra-op threads;
- runs ``round.run_round`` and writes its result JSON atomically next to the candidate; exit code 0
  with the result, 3 when the round was skipped (too few labels), 1 on any other failure.

``run_worker(spec, stop_event, timeout_s)`` starts it, waits (polling ``stop_event``), kills it on
timeout or stop, and returns the result dict.
"""

import ctypes
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

logger = logging.getLogger(__name__)

PR_SET_PDEATHSIG = 1
EXIT_SKIPPED = 3
POLL_S = 0.2


class WorkerError(RuntimeError):
    """The worker failed, was killed, or timed out (the message says which)."""


def die_with_parent(parent_pid: int) -> None:
    """Linux: SIGKILL this process when the parent exits; exit now if it already did."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError) as exc:  # not Linux: rely on the parent's timeout instead
        logger.warning("cannot tie the worker to its parent: %s", exc)
    if os.getppid() != parent_pid:
        os._exit(1)


def lower_priority(nice: int, idle_class: bool) -> None:
    """Raise niceness by ``nice``; with ``idle_class`` also move to ``SCHED_IDLE`` where Linux offers it,
    so the round only gets CPU time that no normal-priority thread (inference, drivers) wants."""
    os.nice(nice)
    if idle_class and hasattr(os, "sched_setscheduler") and hasattr(os, "SCHED_IDLE"):
        try:
            os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
        except OSError as exc:
            logger.warning("SCHED_IDLE refused (%s); running niced only", exc)


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point of the worker process (one argument: the spec JSON file)."""
    from cosmo_edge.finetune.registry import write_json_atomic
    from cosmo_edge.finetune.round import RoundSettings, RoundSkipped, run_round

    args = sys.argv[1:] if argv is None else argv
    spec = json.loads(Path(args[0]).read_text(encoding="utf-8"))
    die_with_parent(int(spec["parent_pid"]))
    logging.basicConfig(
        level=spec.get("log_level", "INFO"), format="finetune-worker %(levelname)s %(message)s"
    )
    lower_priority(int(spec.get("nice", 10)), bool(spec.get("idle_class", True)))
    settings = RoundSettings(**spec["settings"])
    try:
        result = run_round(spec["active"], spec["store"], spec["out"], settings)
    except RoundSkipped as exc:
        write_json_atomic(Path(spec["result"]), {"skipped": str(exc)})
        return EXIT_SKIPPED
    write_json_atomic(Path(spec["result"]), result)
    return 0


def run_worker(
    spec: Dict[str, Any], work_dir: Path, stop: threading.Event, timeout_s: float
) -> Dict[str, Any]:
    """Run one round in a worker process; the result dict (``{"skipped": why}`` when skipped)."""
    spec = dict(spec, parent_pid=os.getpid(), result=str(work_dir / "result.json"))
    spec_path = work_dir / "spec.json"
    spec_path.write_text(json.dumps(spec), encoding="utf-8")
    env = dict(os.environ, OMP_NUM_THREADS=str(spec["settings"].get("threads", 1)))
    started = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "cosmo_edge.finetune.worker", str(spec_path)], env=env)
    logger.info("fine-tune worker pid %d started", proc.pid)
    try:
        while proc.poll() is None:
            if stop.wait(POLL_S):
                raise WorkerError("stopped")
            if time.monotonic() - started > timeout_s:
                raise WorkerError(f"timed out after {timeout_s:.0f} s")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    if proc.returncode not in (0, EXIT_SKIPPED):
        raise WorkerError(f"worker exited with status {proc.returncode}")
    return json.loads(Path(spec["result"]).read_text(encoding="utf-8"))


if __name__ == "__main__":
    sys.exit(main())

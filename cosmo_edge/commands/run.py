"""``cosmo-edge run``: the daemon - sensors to published predictions until SIGTERM / SIGINT.

``cosmo-edge run --config FILE`` wires drivers -> timebase -> rings -> windows -> backend -> ZeroMQ
publisher (``cosmo_edge.daemon.app``). SIGTERM and SIGINT stop it cleanly: threads joined, sockets
closed, exit status 0. ``--duration-s`` stops it after that many seconds; with the simulator and no
duration it stops when the script has played. ``--show`` draws the live view (predictions, and the
simulator's ground truth when there is one) in this terminal; log lines below WARNING are then
hidden so they do not tear the view. ``--sim`` uses the bundled simulator config and model.
``--replay-trials`` makes the simulator replay UTD-MHAD recordings (IMU, depth; radar from the
recorded skeletons) through the same simulated devices instead of its script.

Under systemd (``Type=notify``) it extends the start timeout while starting, sends READY=1 once
``cosmo_edge.daemon.operations`` reports ready (sensors delivering, model warm, windows flowing) and
lets that module ping the watchdog only while every stage progresses; ``/healthz``, ``/readyz`` and
``/metrics`` are served on the config's ``health`` host and port (default ``127.0.0.1:9810``;
``--health-port`` overrides the port, ``--no-health`` turns the endpoint off; docs/operations.md).

Exit status: 0 clean stop, 1 start-up failure (model, backend, socket, never ready under systemd),
2 bad config.
"""

import argparse
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

NAME = "run"
HELP = "run the daemon: sensors -> model -> ZeroMQ predictions (Ctrl-C / SIGTERM to stop)"

logger = logging.getLogger(__name__)

READY_TIMEOUT_S = 100.0  # under systemd: longest wait for readiness (TimeoutStartSec= is 120 s)
EXTEND_STEP_S = 60.0  # EXTEND_TIMEOUT_USEC= step while starting


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """--config / --sim, --duration-s, --show and model overrides."""
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--config", type=Path, help="daemon config (YAML; see cosmo-edge check-config)")
    source.add_argument(
        "--sim", action="store_true", help="the bundled config: simulator + bundled model, real drivers"
    )
    parser.add_argument(
        "--duration-s", type=float, help="stop after this many seconds (default: until signalled)"
    )
    parser.add_argument("--show", action="store_true", help="show live predictions in this terminal")
    parser.add_argument("--model", type=Path, help="checkpoint to serve instead of model.path")
    parser.add_argument(
        "--backend", choices=["auto", "onnxruntime", "torch", "tensorrt"], help="instead of model.backend"
    )
    parser.add_argument(
        "--health-port",
        type=int,
        default=None,
        help="loopback HTTP port of /healthz /readyz /metrics (0: any; default: health.port, 9810)",
    )
    parser.add_argument("--no-health", action="store_true", help="no HTTP health endpoint")
    parser.add_argument(
        "--replay-trials",
        help="simulator: replay these UTD-MHAD trials (e.g. a1_s1_t1,a2_s1_t1) instead of its script",
    )
    parser.add_argument("--data-root", help="UTD-MHAD folder for --replay-trials (default: $COSMO_DATA)")
    parser.add_argument(
        "--frame-cache",
        choices=["auto", "on", "off"],
        default="auto",
        help="per-frame depth/radar feature cache: auto = where the backend offers it (eager torch)",
    )


def _load(args: argparse.Namespace) -> Any:
    from cosmo_edge.config import ConfigError, load_config

    path = args.config
    if args.sim:
        from cosmo_edge.bundled import SIM_CONFIG

        path = SIM_CONFIG
    try:
        return path, load_config(path)
    except ConfigError as exc:
        print(str(exc), file=sys.stderr)
        return path, None


def run(args: argparse.Namespace) -> int:
    """Start the daemon, run until a signal / the duration / the script's end, stop cleanly."""
    from cosmo_edge.daemon.app import Daemon
    from cosmo_edge.sdnotify import Notifier, extending_timeout

    path, config = _load(args)
    if config is None:
        return 2
    trials = [t.strip() for t in (args.replay_trials or "").split(",") if t.strip()]
    root = args.data_root or os.environ.get("COSMO_DATA")
    if trials and (config.simulator is None or not root):
        print(
            "cosmo-edge run: --replay-trials needs a simulator section and --data-root or COSMO_DATA",
            file=sys.stderr,
        )
        return 2
    if args.show:
        logging.getLogger().setLevel(max(logging.WARNING, logging.getLogger().level))
    stop = threading.Event()
    previous = {
        sig: signal.signal(sig, lambda signum, frame: stop.set()) for sig in (signal.SIGTERM, signal.SIGINT)
    }
    daemon = Daemon(
        config,
        config_path=path,
        model_path=args.model,
        backend=args.backend,
        frame_cache=args.frame_cache,
        replay_root=root if trials else None,
        replay_trials=trials,
    )
    notifier = Notifier.from_environment(unset=True)
    ops, viewer = None, None
    try:
        try:
            with extending_timeout(notifier, step_s=EXTEND_STEP_S):  # a TensorRT build can take minutes
                daemon.start()
                ops = _start_operations(daemon, notifier, args)
                ready = _wait_ready(ops, daemon, notifier, stop)
        except Exception as exc:  # noqa: BLE001 - report any start-up failure as one line and exit 1
            logger.exception("start-up failed")
            print(f"cosmo-edge run: start-up failed: {exc}", file=sys.stderr)
            return 1
        if not ready:
            return 1
        if args.show:
            viewer = _start_view(daemon, stop)
        reason = daemon.run(stop, args.duration_s)
        logger.info("stopping (%s)", reason)
    finally:
        stop.set()
        if viewer is not None:
            viewer.join(5.0)
        notifier.stopping()
        if ops is not None:
            ops.stop()
        daemon.stop()
        notifier.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


def _start_operations(daemon: Any, notifier: Any, args: argparse.Namespace) -> Any:
    """Health endpoint, metrics and the progress-gated watchdog around the started daemon."""
    from cosmo_edge.daemon.operations import DaemonOperations

    health = daemon.config.health
    port = health.port if args.health_port is None else args.health_port
    serve = health.enabled and not args.no_health
    ops = DaemonOperations(daemon, notifier, host=health.host, port=port, serve_http=serve)
    ops.start()
    return ops


def _wait_ready(ops: Any, daemon: Any, notifier: Any, stop: threading.Event) -> bool:
    """Under systemd: wait for readiness, then READY=1 (False when it never came). Otherwise: True."""
    if not notifier.enabled:
        return True
    if not ops.wait_until_ready(READY_TIMEOUT_S, stop):
        logger.error("not ready within %.0f s; exiting so that systemd can restart", READY_TIMEOUT_S)
        return stop.is_set()  # a SIGTERM during start-up is a clean stop, not a failure
    notifier.ready(daemon.status_line())
    return True


def _start_view(daemon: Any, stop: threading.Event) -> threading.Thread:
    """The live view in a thread, subscribed to the daemon's own endpoint."""
    from cosmo_edge.daemon.subscriber import watch
    from cosmo_edge.daemon.view import GroundTruth, InPlaceWriter, LiveView

    endpoint = daemon.publisher.bound_endpoint or daemon.config.publish.endpoint
    truth = GroundTruth(daemon.simulator.ground_truth_path) if daemon.simulator is not None else None
    view = LiveView(endpoint, truth)
    writer = InPlaceWriter(sys.stdout)
    thread = threading.Thread(
        target=watch,
        kwargs={"endpoint": endpoint, "view": view, "draw": lambda v: writer.draw(v.lines()), "stop": stop},
        name="live-view",
        daemon=True,
    )
    thread.start()
    return thread

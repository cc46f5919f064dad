"""``cosmo-edge subscribe``: watch a running daemon's predictions live in the terminal.

Connects to the daemon's ZeroMQ endpoint and keeps one compact block of lines up to date in place
(ANSI cursor control): the current activity, the last window's top classes, latency, sensors and
message counts. ``--truth FILE`` (the simulator's ``ground_truth.jsonl``) adds the scripted activity
beside each prediction and a running accuracy. At the end one summary line is printed.
"""

import argparse
import json
import logging
import signal
import sys
import threading
from pathlib import Path

NAME = "subscribe"
HELP = "show a running daemon's predictions live (with the simulator's ground truth if given)"

logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """--endpoint, --duration-s, --truth, --refresh-s."""
    parser.add_argument("--endpoint", default="tcp://127.0.0.1:5556", help="the daemon's publish endpoint")
    parser.add_argument("--duration-s", type=float, help="stop after this many seconds (default: Ctrl-C)")
    parser.add_argument(
        "--truth", type=Path, help="simulator ground truth (ground_truth.jsonl) to compare with"
    )
    parser.add_argument("--refresh-s", type=float, default=0.25, help="redraw period (s)")


def run(args: argparse.Namespace) -> int:
    """Subscribe, draw until stopped, print a one-line JSON summary."""
    from cosmo_edge.daemon.subscriber import watch
    from cosmo_edge.daemon.view import GroundTruth, InPlaceWriter, LiveView

    stop = threading.Event()
    previous = {
        sig: signal.signal(sig, lambda signum, frame: stop.set()) for sig in (signal.SIGTERM, signal.SIGINT)
    }
    view = LiveView(args.endpoint, GroundTruth(args.truth) if args.truth else None)
    writer = InPlaceWriter(sys.stdout)
    try:
        watch(args.endpoint, view, lambda v: writer.draw(v.lines()), stop, args.duration_s, args.refresh_s)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    summary = {
        "windows": view.counts["activity.window"],
        "changes": view.counts["activity.change"],
        "status": view.counts["status"],
        "lost": view.gaps,
        "accuracy": view.score.accuracy,
        "accuracy_settled": view.score.settled_accuracy,
    }
    print(json.dumps(summary))
    return 0

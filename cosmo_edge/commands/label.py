"""``cosmo-edge label``: label what the daemon just saw (a span of time or window ids).

``--last 5s`` labels the windows of the last five seconds, ``--start/--end`` an explicit span in host
``CLOCK_MONOTONIC`` ns (the daemon's clock; the same on every process of the machine), and
``--window-id`` the windows named in ``activity.window`` messages. The command waits for the
daemon's reply, which comes only after the label is durably stored, and retries a lost reply with
the same message id (answered ``duplicate``, so nothing is stored twice).
"""

import argparse
import re

NAME = "label"
HELP = "send a label for recent windows to the running daemon and print its reply"

_DURATION = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*(ms|s|m|min)?\s*$")
_UNIT_S = {"ms": 1e-3, "s": 1.0, "m": 60.0, "min": 60.0, None: 1.0}


def parse_duration_s(text: str) -> float:
    """``"5s"``, ``"500ms"``, ``"2m"`` or a plain number of seconds -> seconds (> 0)."""
    match = _DURATION.match(text)
    if not match or float(match.group(1)) <= 0:
        raise argparse.ArgumentTypeError(f"not a positive duration: {text!r} (examples: 5s, 500ms, 2m)")
    return float(match.group(1)) * _UNIT_S[match.group(2)]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """What to label, where to send it, and how long to wait."""
    parser.add_argument("--activity", required=True, help="class name, as the model names it (case ignored)")
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument(
        "--last", type=parse_duration_s, metavar="DURATION", help="the last DURATION (5s, 500ms)"
    )
    what.add_argument("--start", type=int, metavar="NS", help="span start, host monotonic ns (with --end)")
    what.add_argument(
        "--window-id", type=int, action="append", metavar="ID", help="a window id (repeat for several)"
    )
    parser.add_argument("--end", type=int, metavar="NS", help="span end, host monotonic ns (with --start)")
    parser.add_argument("--endpoint", default="tcp://127.0.0.1:5557", help="label intake endpoint")
    parser.add_argument("--id", help="message id (default: a new UUID); resending an id is idempotent")
    parser.add_argument("--timeout-s", type=float, default=5.0, help="wait per attempt for the reply (s)")
    parser.add_argument("--attempts", type=int, default=2, help="attempts, all with the same message id")
    parser.add_argument("--server-key", help="CURVE: the daemon's public key file")
    parser.add_argument("--client-key", help="CURVE: this client's secret key file")
    parser.add_argument("--json", action="store_true", help="print the reply map as JSON")


def run(args: argparse.Namespace) -> int:
    """0: stored (or already stored); 1: refused; 2: bad arguments; 3: no reply."""
    import json
    import pathlib
    import sys
    import time
    import uuid

    from cosmo_edge.labels.client import LabelClientError, send_label
    from cosmo_edge.labels.protocol import LabelRequest, ProtocolError, describe_reply

    if (args.start is None) != (args.end is None):
        print("cosmo-edge label: --start and --end go together", file=sys.stderr)
        return 2
    if (args.server_key is None) != (args.client_key is None):
        print("cosmo-edge label: --server-key and --client-key go together", file=sys.stderr)
        return 2
    message_id = args.id or uuid.uuid4().hex
    if args.window_id:
        request = LabelRequest(message_id, args.activity, window_ids=tuple(args.window_id))
    elif args.last is not None:
        end_ns = time.monotonic_ns()
        request = LabelRequest(message_id, args.activity, end_ns - int(args.last * 1e9), end_ns)
    else:
        request = LabelRequest(message_id, args.activity, args.start, args.end)
    keys = [pathlib.Path(k) if k else None for k in (args.server_key, args.client_key)]
    try:
        reply = send_label(request, args.endpoint, args.timeout_s, args.attempts, keys[0], keys[1])
    except ProtocolError as exc:
        print(f"cosmo-edge label: {exc}", file=sys.stderr)
        return 2
    except LabelClientError as exc:
        print(f"cosmo-edge label: {exc}", file=sys.stderr)
        return 3
    print(json.dumps(reply, sort_keys=True) if args.json else describe_reply(reply))
    return 0 if reply.get("ok") else 1

"""``cosmo-edge labels``: what the label store holds (counts per class and the newest windows)."""

import argparse

NAME = "labels"
HELP = "list the label store: labeled windows per class and the newest entries"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Which store and how much to show."""
    parser.add_argument(
        "--state-dir", default="/var/lib/cosmo-edge", help="daemon state directory holding labels.sqlite3"
    )
    parser.add_argument("--newest", type=int, default=10, help="how many of the newest windows to list")
    parser.add_argument("--json", action="store_true", help="print counts and newest entries as JSON")


def run(args: argparse.Namespace) -> int:
    """0 after printing; 1 when there is no readable label store."""
    import datetime
    import json
    import sys

    from cosmo_edge.labels.store import LabelStore, LabelStoreError, store_path

    try:
        with LabelStore(store_path(args.state_dir), readonly=True) as store:
            counts = store.counts()
            newest = store.newest(args.newest)
    except LabelStoreError as exc:
        print(f"cosmo-edge labels: {exc}", file=sys.stderr)
        return 1
    rows = [
        {
            "row": w.row_id,
            "received": datetime.datetime.fromtimestamp(w.received_unix_ns / 1e9).isoformat(" ", "seconds"),
            "activity": w.activity,
            "window_id": w.window_id,
            "span_s": round((w.t_end_ns - w.t_start_ns) / 1e9, 3),
            "present": [m for m, ok in w.present.items() if ok],
            "message_id": w.message_id,
        }
        for w in newest
    ]
    if args.json:
        print(json.dumps({"counts": counts, "newest": rows}, sort_keys=True))
        return 0
    print(f"{store_path(args.state_dir)}: {sum(counts.values())} labeled windows, {len(counts)} classes")
    for activity, count in counts.items():
        print(f"  {count:6d}  {activity}")
    if rows:
        print("newest:")
        print(f"  {'row':>6}  {'received':19}  {'window':>7}  {'span s':>6}  activity [present] message")
    for r in rows:
        present = ",".join(r["present"]) or "-"
        print(
            f"  {r['row']:6d}  {r['received']:19}  {r['window_id']:7d}  {r['span_s']:6.2f}  "
            f"{r['activity']} [{present}] {r['message_id']}"
        )
    return 0

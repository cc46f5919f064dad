"""Crash safety: SIGKILL the label server while it writes; every acknowledged label must survive."""

import json
import os
import pathlib
import random
import signal
import sqlite3
import subprocess
import sys
import time
from typing import List

import msgpack
import pytest
import zmq

from cosmo_edge.labels import LabelStore
from cosmo_edge.labels.protocol import decode_reply

TESTS = pathlib.Path(__file__).resolve().parent
CHILD = """
import sys
sys.path.insert(0, sys.argv[3])
from labels_support import LABEL_NAMES, make_window
from cosmo_edge.labels import LabelServer, LabelStore

store = LabelStore(sys.argv[1])
by_id = lambda ids: [make_window(i, with_depth=True) for i in ids]
server = LabelServer(store, LABEL_NAMES, lambda a, b: [], by_id, "tcp://127.0.0.1:0", session=sys.argv[2])
server.start()
print(server.bound_endpoint, flush=True)
sys.stdin.read()  # serve until killed
"""


def run_round(db: pathlib.Path, round_id: int, rng: random.Random) -> List[str]:
    """Start a server process, label until a random moment after 8 acks, SIGKILL it; the acked ids."""
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(db), f"round{round_id}", str(TESTS)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    acked: List[str] = []
    socket = zmq.Context.instance().socket(zmq.REQ)
    socket.setsockopt(zmq.LINGER, 0)
    try:
        endpoint = child.stdout.readline().strip()
        assert endpoint.startswith("tcp://"), "child did not start"
        socket.connect(endpoint)
        kill_after = 8 + rng.randrange(6)
        for n in range(200):
            message_id = f"r{round_id}-m{n}"
            ids = list(range(4 * n, 4 * n + 4))
            body = {"schema_version": 1, "id": message_id, "activity": "walk", "window_ids": ids}
            socket.send(msgpack.packb(body, use_bin_type=True))
            if len(acked) >= kill_after:
                time.sleep(rng.uniform(0.0, 0.03))  # lands mid-write most of the time
                os.kill(child.pid, signal.SIGKILL)
                child.wait(10)
                if socket.poll(200):  # a reply already on its way was sent after the commit
                    assert decode_reply(socket.recv())["ok"]
                    acked.append(message_id)
                return acked
            assert socket.poll(10_000), "no reply"
            reply = decode_reply(socket.recv())
            assert reply["ok"] and reply["stored"] == 4, reply
            acked.append(message_id)
        raise AssertionError("never killed")
    finally:
        socket.close()
        if child.poll() is None:
            child.kill()
            child.wait(10)


@pytest.mark.slow
def test_sigkill_mid_write_keeps_every_acknowledged_label(tmp_path: pathlib.Path) -> None:
    db = tmp_path / "state" / "labels.sqlite3"
    rng = random.Random(1234)
    all_acked: List[str] = []
    for round_id in range(3):  # later rounds also recover the WAL a killed writer left behind
        all_acked += run_round(db, round_id, rng)
        conn = sqlite3.connect(str(db))
        try:
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            events = dict(conn.execute("SELECT message_id, window_ids FROM label_events").fetchall())
            per_message = dict(
                conn.execute(
                    "SELECT message_id, COUNT(*) FROM labeled_windows GROUP BY message_id"
                ).fetchall()
            )
            inputs = conn.execute("SELECT COUNT(*) FROM window_inputs").fetchone()[0]
        finally:
            conn.close()
        missing = [m for m in all_acked if m not in events]
        assert not missing, f"acknowledged but lost: {missing}"
        assert all(per_message[m] == len(json.loads(w)) == 4 for m, w in events.items())  # all or nothing
        assert inputs == 3 * sum(per_message.values())  # imu, skeleton, depth per window
        assert len(events) - len(all_acked) in (0, 1)  # at most the one in flight got committed unacked
    with LabelStore(db) as store:
        last = list(store.iter_windows())[-1]
        assert last.inputs["depth"].shape == (40, 60, 80)
        assert store.counts() == {"walk": 4 * len(events)}

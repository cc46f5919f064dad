"""Socket faults against a running daemon (a real ``cosmo-edge run`` process on the simulator):
a subscriber that never reads, and a flood of labels mixed with invalid and oversized requests.

The daemon publishes ``status`` every 5 ms here (``publish.status_period_s``) so that a subscriber
that never reads falls behind by megabytes within seconds; ``publish.hwm`` is small for the same
reason. The label buffer (``labels.buffer_s``, about 1 MB of inputs per window with depth) is kept
short and filled before memory is measured: while it fills, the daemon's memory grows by design.
"""

import random
import threading
import time
import uuid

import msgpack
import pytest
from fault_support import DaemonRun, stored_message_ids, wait_for, write_config

from cosmo_edge.labels.protocol import LabelRequest, decode_reply, encode_request
from cosmo_edge.publish import unpack_message

zmq = pytest.importorskip("zmq")
pytest.importorskip("pyrealsense2")

STATUS_PERIOD_S = 0.005
SNDHWM = 100
FLOOD_CLIENTS = 4
FLOOD_PER_CLIENT = 500
LABEL_BUFFER_S = 8.0  # labels.buffer_s: windows a label can name (host s); filled before RSS is measured


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("socket-faults")
    config = write_config(
        tmp,
        labels=True,
        label_buffer_s=LABEL_BUFFER_S,
        publish={"status_period_s": STATUS_PERIOD_S, "hwm": SNDHWM},
    )
    run = DaemonRun(config, tmp / "daemon.log")
    run.state_dir = tmp / "state"
    try:
        # the label buffer (about 1 MB per window with depth) is full after 2 * LABEL_BUFFER_S windows
        assert run.wait_windows(int(2 * LABEL_BUFFER_S) + 4, 90.0), run.log()[-3000:]
        yield run
        assert run.terminate() == 0, run.log()[-3000:]
    finally:
        run.close()


def test_subscriber_that_never_reads_does_not_block_or_bloat_the_publisher(daemon):
    """Expected: a SUB that connects and never reads costs the daemon a bounded amount: the PUB drops
    for it past its high-water mark (what it finally drains has ``seq`` gaps and is much less than
    what was published meanwhile), the daemon's own publish queue drops nothing (the publisher
    thread never blocked), its resident memory grows by less than 64 MiB, and by less than 16 MiB
    over the second half of the 20 s, and another subscriber receives every window (no ``seq``
    gap) and status messages at the configured rate throughout."""
    context = zmq.Context()
    slow = context.socket(zmq.SUB)
    slow.setsockopt(zmq.RCVHWM, 10)
    slow.setsockopt(zmq.RCVBUF, 4096)
    slow.setsockopt(zmq.LINGER, 0)
    slow.setsockopt(zmq.SUBSCRIBE, b"")
    slow.connect(daemon.endpoint)
    try:
        time.sleep(1.0)
        rss0 = daemon.rss_bytes()
        started = time.monotonic_ns()
        first_seq = daemon.statuses()[-1]["seq"]
        rss = []
        for _ in range(20):
            time.sleep(1.0)
            rss.append(daemon.rss_bytes())
        peak_rss = max(rss)
        statuses = daemon.statuses(started)
        published = statuses[-1]["seq"] - first_seq
        drained, drain_started = [], time.monotonic_ns()
        while slow.poll(200) and time.monotonic_ns() - drain_started < 10e9:
            topic, body = unpack_message(slow.recv_multipart())
            if topic == "status":
                drained.append(body["seq"])
            if body["t_ns"] >= drain_started:  # the backlog is read: this one was sent just now
                break
    finally:
        slow.close(linger=0)
        context.term()
    print(f"\nslow subscriber: {published} status messages published in 20 s, {len(drained)} drained; "
          f"RSS MiB {[round(r / 2**20) for r in [rss0] + rss]}")  # fmt: skip
    assert published > 2000  # the fast subscriber saw the configured rate (200/s, 2 cores: >= 100/s)
    # the backlog is what the HWMs and the kernel's socket buffers hold, not everything published
    assert len(drained) < 0.8 * published, "the PUB kept everything for the subscriber that never read"
    gaps = [b - a - 1 for a, b in zip(drained, drained[1:]) if b - a > 1]
    assert sum(gaps) > 0.2 * published, f"too few messages dropped for it: {gaps}"
    assert peak_rss - rss0 < 64 * 2**20
    assert max(rss[10:]) - rss[9] < 16 * 2**20  # no steady growth in the second half
    assert statuses[-1]["publisher"]["dropped"] == 0
    seqs = [w["seq"] for w in daemon.windows(started)]
    assert len(seqs) >= 30 and seqs == list(range(seqs[0], seqs[0] + len(seqs)))
    status_seqs = [s["seq"] for s in statuses]
    assert status_seqs == list(range(status_seqs[0], status_seqs[0] + len(status_seqs)))


def _request(socket, frame: bytes, timeout_s: float = 10.0):
    socket.send(frame)
    if not socket.poll(int(timeout_s * 1000)):
        raise TimeoutError("no reply")
    return decode_reply(socket.recv())


class Flooder(threading.Thread):
    """Labels recent windows as fast as the server answers, on one REQ socket."""

    def __init__(self, run, context, labels, count, seed):
        super().__init__(daemon=True)
        self.run_, self.labels, self.count = run, labels, count
        self.rng = random.Random(seed)
        self.socket = context.socket(zmq.REQ)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.connect(run.label_endpoint)
        self.acked, self.errors, self.window_ids, self.rtt_s = [], [], set(), []

    def run(self):
        try:
            for _ in range(self.count):
                window = self.rng.choice(self.run_.windows()[-6:])  # still in the label buffer
                wid = int(window["window_id"])
                request = LabelRequest(
                    uuid.uuid4().hex, self.labels[wid % len(self.labels)], window_ids=(wid,)
                )
                began = time.monotonic()
                reply = _request(self.socket, encode_request(request))
                self.rtt_s.append(time.monotonic() - began)
                if reply["ok"]:
                    assert reply["id"] == request.message_id
                    self.acked.append(request.message_id)
                    self.window_ids.update(reply["window_ids"])
                else:
                    self.errors.append(reply["error"])
        finally:
            self.socket.close(linger=0)


def test_label_flood_keeps_every_acknowledged_label_and_rejects_bad_requests(daemon):
    """Expected: thousands of labels from four clients at once are all answered; every acknowledged
    message id is in the SQLite store afterwards (which passes ``PRAGMA integrity_check``), each
    labeled window is stored once; meanwhile invalid requests get the matching error reply
    (``malformed``, ``too_large``, ``schema_version``, ``bad_field``, ``unknown_activity``), a request
    over the 1 MiB hard limit is dropped without killing the server, the server keeps answering
    within seconds, and the daemon keeps publishing windows."""
    labels = daemon.statuses()[-1]["labels"]  # the class names
    assert isinstance(labels, list) and labels, labels
    context = zmq.Context()
    flooders = [Flooder(daemon, context, labels, FLOOD_PER_CLIENT, seed) for seed in range(FLOOD_CLIENTS)]
    started = time.monotonic_ns()
    for flooder in flooders:
        flooder.start()
    bad = context.socket(zmq.REQ)
    bad.setsockopt(zmq.LINGER, 0)
    bad.connect(daemon.label_endpoint)
    wid = int(daemon.windows()[-1]["window_id"])
    valid = LabelRequest("x", labels[0], window_ids=(wid,)).to_map()
    cases = {
        "malformed": b"\xc1 not msgpack",
        "too_large": msgpack.packb(dict(valid, id="big", activity="a" * 5000), use_bin_type=True),
        "schema_version": msgpack.packb(dict(valid, id="sv", schema_version=99), use_bin_type=True),
        "bad_field": msgpack.packb(dict(valid, id="bf", window_ids=[-1]), use_bin_type=True),
        "unknown_activity": msgpack.packb(dict(valid, id="ua", activity="juggle"), use_bin_type=True),
    }
    try:
        for _ in range(3):
            for code, frame in cases.items():
                reply = _request(bad, frame)
                assert not reply["ok"] and reply["error"] == code, reply
        huge = context.socket(zmq.REQ)
        huge.setsockopt(zmq.LINGER, 0)
        huge.connect(daemon.label_endpoint)
        huge.send(b"\x00" * (2 << 20))  # over HARD_MAX_BYTES: the connection is dropped, no reply
        assert not huge.poll(2000)
        huge.close(linger=0)
        for flooder in flooders:
            flooder.join(300.0)
            assert not flooder.is_alive()
    finally:
        bad.close(linger=0)
        context.term()
    elapsed_s = (time.monotonic_ns() - started) * 1e-9
    acked = [i for f in flooders for i in f.acked]
    errors = [e for f in flooders for e in f.errors]
    rtts = sorted(r for f in flooders for r in f.rtt_s)
    print(f"\nlabel flood: {len(acked)} acked, {len(errors)} refused ({set(errors)}) in {elapsed_s:.1f} s; "
          f"round trip p50 {rtts[len(rtts) // 2] * 1e3:.1f} ms, max {rtts[-1] * 1e3:.0f} ms")  # fmt: skip
    assert len(acked) + len(errors) == FLOOD_CLIENTS * FLOOD_PER_CLIENT
    assert len(acked) >= 0.95 * FLOOD_CLIENTS * FLOOD_PER_CLIENT
    assert rtts[-1] < 5.0
    assert daemon.wait_windows(2, 10.0, since_ns=time.monotonic_ns())
    stored = stored_message_ids(daemon.state_dir)
    missing = set(acked) - stored
    assert not missing, f"{len(missing)} acknowledged labels are not in the store"
    import sqlite3

    from cosmo_edge.labels import store_path

    with sqlite3.connect(str(store_path(daemon.state_dir))) as conn:
        rows = conn.execute(
            "SELECT session, window_id, COUNT(*) FROM labeled_windows GROUP BY 1, 2"
        ).fetchall()
    assert all(count == 1 for _, _, count in rows)
    window_ids = set().union(*(f.window_ids for f in flooders))
    assert len(rows) == len(window_ids)
    assert wait_for(
        lambda: daemon.metric("cosmo_edge_label_requests_total", outcome="error") >= len(cases) * 3, 5.0
    )

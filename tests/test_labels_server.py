"""The label intake end to end: a real REQ client, the real server thread, a real SQLite file."""

import pathlib
import sqlite3
import time
from typing import Any, Dict, Iterator, List, Tuple

import msgpack
import numpy as np
import pytest
import zmq
from labels_support import HOP_NS, LABEL_NAMES, T0_NS, WINDOW_NS, filled_buffer, make_window

from cosmo_edge.cli import main
from cosmo_edge.labels import (
    LabelRequest,
    LabelServer,
    LabelServerError,
    LabelStore,
    RecentWindows,
    send_label,
)
from cosmo_edge.labels.protocol import MAX_MESSAGE_BYTES, decode_reply
from cosmo_edge.labels.store import store_path

Served = Tuple[LabelServer, pathlib.Path, Dict[str, Any]]


@pytest.fixture
def served(tmp_path: pathlib.Path) -> Iterator[Served]:
    """Server on a free loopback port over windows 0..39 (window 7 has no data)."""
    state = {"buffer": filled_buffer(40)}
    store = LabelStore.in_state_dir(tmp_path / "state")
    server = LabelServer(
        store,
        LABEL_NAMES,
        windows_for_span=lambda a, b: state["buffer"].for_span(a, b),
        windows_by_id=lambda ids: state["buffer"].by_id(ids),
        endpoint="tcp://127.0.0.1:0",
        session="run1",
    )
    with server:
        yield server, store_path(tmp_path / "state"), state
    store.close()


def request(endpoint: str, body: Any, raw: bool = False, frames: int = 1) -> Dict[str, Any]:
    """One REQ round trip with a short timeout (a missing reply fails the test)."""
    socket = zmq.Context.instance().socket(zmq.REQ)
    socket.setsockopt(zmq.LINGER, 0)
    socket.setsockopt(zmq.RCVTIMEO, 5000)
    socket.connect(endpoint)
    try:
        frame = body if raw else msgpack.packb(body, use_bin_type=True)
        socket.send_multipart([frame] * frames)
        return decode_reply(socket.recv())
    finally:
        socket.close()


def span_body(message_id: str, activity: str, first: int, last: int) -> Dict[str, Any]:
    """A span covering windows first..last of the test grid exactly."""
    start_ns = T0_NS + first * HOP_NS - WINDOW_NS
    return {"schema_version": 1, "id": message_id, "activity": activity, "t_start_ns": start_ns,
            "t_end_ns": T0_NS + last * HOP_NS}  # fmt: skip


def table_counts(path: pathlib.Path) -> Tuple[int, int, int]:
    """(labeled windows, events, input rows) read through a fresh connection."""
    conn = sqlite3.connect(str(path))
    try:
        return tuple(conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]  # type: ignore[return-value]
                     for t in ("labeled_windows", "label_events", "window_inputs"))  # fmt: skip
    finally:
        conn.close()


def test_span_label_is_durable_when_acknowledged(served: Served) -> None:
    server, path, _ = served
    reply = request(server.bound_endpoint, span_body("m1", "walk", 10, 13))
    assert reply["ok"] and not reply["duplicate"] and reply["id"] == "m1"
    assert reply["window_ids"] == [10, 11, 12, 13] and reply["stored"] == 4
    with LabelStore(path) as reopened:  # a separate connection sees the committed rows
        rows = list(reopened.iter_windows())
        assert reopened.integrity_check() == "ok"
    assert [(w.window_id, w.activity, w.session) for w in rows] == [
        (i, "walk", "run1") for i in range(10, 14)
    ]
    np.testing.assert_array_equal(rows[0].inputs["imu"], make_window(10).inputs["imu"])
    assert server.counters["stored_windows"] == 4


def test_window_ids_and_case_insensitive_activity(served: Served) -> None:
    server, path, _ = served
    body = {"schema_version": 1, "id": "m2", "activity": "stand up", "window_ids": [20, 22]}
    reply = request(server.bound_endpoint, body)
    assert reply["ok"] and reply["activity"] == "Stand Up" and reply["window_ids"] == [20, 22]
    with LabelStore(path, readonly=True) as store:
        assert store.counts() == {"Stand Up": 2}


def test_duplicates_reply_success_and_add_nothing(served: Served) -> None:
    server, path, state = served
    assert request(server.bound_endpoint, span_body("m1", "walk", 10, 13))["stored"] == 4
    before = table_counts(path)
    state["buffer"] = RecentWindows(capacity=1)  # the windows left the buffer: a retry still succeeds
    retry = request(server.bound_endpoint, span_body("m1", "walk", 10, 13))
    assert (
        retry["ok"]
        and retry["duplicate"]
        and retry["stored"] == 0
        and retry["window_ids"] == [10, 11, 12, 13]
    )
    state["buffer"] = filled_buffer(40)
    same_windows = request(server.bound_endpoint, span_body("m9", "walk", 11, 12))
    assert same_windows["ok"] and same_windows["duplicate"] and same_windows["stored"] == 0
    assert before == (4, 1, 8)
    assert table_counts(path) == (4, 2, 8)  # no new window; only m9's id is recorded (an event row)
    assert server.counters["duplicates"] == 2


@pytest.mark.parametrize(
    "body, code, needle",
    [
        (span_body("b1", "run", 10, 13), "unknown_activity", "unknown activity 'run'"),
        (span_body("b2", "walk", 500, 510), "no_data", "no buffered window"),
        (span_body("b3", "walk", 7, 7), "no_data", "no buffered window with sensor data"),
        ({"schema_version": 1, "id": "b4", "activity": "walk", "window_ids": [3, 99]}, "no_data", "[99]"),
        (
            {**span_body("b5", "walk", 10, 13), "t_start_ns": "yesterday"},
            "bad_field",
            "t_start_ns must be an integer",
        ),
        ({**span_body("b6", "walk", 10, 13), "schema_version": 9}, "schema_version", "must be 1"),
        ({**span_body("b7", "walk", 10, 13), "label": "x"}, "bad_field", "unknown keys ['label']"),
        ({"schema_version": 1, "id": "b8", "activity": "walk"}, "bad_field", "need t_start_ns"),
        ([1, 2, 3], "malformed", "expected a msgpack map"),
    ],
)
def test_bad_labels_get_an_error_and_change_nothing(
    served: Served, body: Any, code: str, needle: str
) -> None:
    server, path, _ = served
    request(server.bound_endpoint, span_body("m0", "walk", 30, 31))
    before = table_counts(path)
    reply = request(server.bound_endpoint, body)
    assert not reply["ok"] and reply["error"] == code and needle in reply["message"], reply
    assert table_counts(path) == before
    assert request(server.bound_endpoint, span_body("m1", "walk", 10, 10))["ok"]  # still serving


def test_raw_garbage_multipart_and_oversized_get_replies(served: Served) -> None:
    server, path, _ = served
    assert request(server.bound_endpoint, b"\xc1\x00garbage", raw=True)["error"] == "malformed"
    assert request(server.bound_endpoint, span_body("m1", "walk", 1, 2), frames=2)["error"] == "malformed"
    big = {**span_body("m2", "walk", 1, 2), "pad": "x" * (2 * MAX_MESSAGE_BYTES)}
    reply = request(server.bound_endpoint, big)
    assert reply["error"] == "too_large" and reply["id"] is None
    bad_type = request(server.bound_endpoint, {**span_body("m3", "walk", 1, 2), "activity": 3})
    assert bad_type["error"] == "bad_field" and bad_type["id"] == "m3"
    assert table_counts(path) == (0, 0, 0) and server.counters["errors"] == 4


def test_conflicting_label_is_refused_whole(served: Served) -> None:
    server, path, _ = served
    request(server.bound_endpoint, span_body("m1", "walk", 10, 13))
    reply = request(server.bound_endpoint, span_body("m2", "sit", 13, 15))
    assert reply["error"] == "conflict" and "13 (walk)" in reply["message"]
    reused = request(server.bound_endpoint, span_body("m1", "sit", 20, 21))
    assert reused["error"] == "conflict" and "already used" in reused["message"]
    assert table_counts(path) == (4, 1, 8)


def test_failing_lookup_and_unstorable_window_reply_and_store_nothing(served: Served) -> None:
    server, path, state = served

    class Broken:
        def for_span(self, a: int, b: int) -> List[Any]:
            raise RuntimeError("ring went away")

        def by_id(self, ids: Any) -> List[Any]:
            bad = make_window(31)
            bad.inputs["imu"] = np.array([object()] * 3)
            return [make_window(30), bad]

    state["buffer"] = Broken()
    reply = request(server.bound_endpoint, span_body("m1", "walk", 10, 13))
    assert reply["error"] == "internal" and "ring went away" in reply["message"]
    body = {"schema_version": 1, "id": "m2", "activity": "walk", "window_ids": [30, 31]}
    reply = request(server.bound_endpoint, body)
    assert reply["error"] == "storage", reply
    assert table_counts(path) == (0, 0, 0)  # window 30 was rolled back with 31


def test_bind_failure_is_reported(served: Served, tmp_path: pathlib.Path) -> None:
    server, _, _ = served
    other = LabelServer(
        LabelStore(tmp_path / "b.sqlite3"), LABEL_NAMES, list, list, endpoint=server.bound_endpoint
    )
    with pytest.raises(LabelServerError, match="cannot bind"):
        other.start()
    other.store.close()


def test_cli_label_and_labels(tmp_path: pathlib.Path, capsys: pytest.CaptureFixture) -> None:
    buffer = filled_buffer(40)
    spans: List[Tuple[int, int]] = []

    def for_span(start_ns: int, end_ns: int) -> List[Any]:
        spans.append((start_ns, end_ns))
        return buffer.by_id(range(30, 37))

    store = LabelStore.in_state_dir(tmp_path)
    with LabelServer(store, LABEL_NAMES, for_span, buffer.by_id, endpoint="tcp://127.0.0.1:0") as server:
        endpoint = server.bound_endpoint
        before_ns = time.monotonic_ns()
        assert main(["label", "--activity", "walk", "--last", "5s", "--endpoint", endpoint]) == 0
        after_ns = time.monotonic_ns()
        assert "ok: stored 7 new; 7 windows labeled 'walk'" in capsys.readouterr().out
        assert len(spans) == 1 and spans[0][1] - spans[0][0] == 5_000_000_000
        assert before_ns <= spans[0][1] <= after_ns  # --last ends "now" on the host monotonic clock
        assert main(["label", "--activity", "sit", "--window-id", "2", "--window-id", "3",
                     "--endpoint", endpoint, "--id", "fixed", "--json"]) == 0  # fmt: skip
        assert '"stored": 2' in capsys.readouterr().out
        assert (
            main(["label", "--activity", "sit", "--window-id", "2", "--endpoint", endpoint, "--id", "fixed"])
            == 0
        )
        assert "already stored" in capsys.readouterr().out
        assert main(["label", "--activity", "fly", "--window-id", "2", "--endpoint", endpoint]) == 1
        assert "error (unknown_activity)" in capsys.readouterr().out
        assert main(["label", "--activity", "sit", "--start", "5", "--endpoint", endpoint]) == 2
    assert main(["labels", "--state-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "9 labeled windows, 2 classes" in out and "     7  walk" in out and "     2  sit" in out
    assert "fixed" in out.splitlines()[5]  # newest first, under the column header
    store.close()
    assert main(["labels", "--state-dir", str(tmp_path / "nothing")]) == 1


def test_cli_label_without_daemon_reports_no_reply(capsys: pytest.CaptureFixture) -> None:
    socket = zmq.Context.instance().socket(zmq.REP)
    port = socket.bind_to_random_port("tcp://127.0.0.1")
    socket.close()  # a port nobody listens on
    args = ["label", "--activity", "walk", "--last", "2s", "--endpoint", f"tcp://127.0.0.1:{port}"]
    assert main(args + ["--timeout-s", "0.2", "--attempts", "2"]) == 3
    assert "no reply" in capsys.readouterr().err


def test_curve_admits_listed_clients_only(tmp_path: pathlib.Path) -> None:
    import zmq.auth

    keys = tmp_path / "keys"
    allowed = tmp_path / "allowed"
    keys.mkdir()
    allowed.mkdir()
    _, server_secret = zmq.auth.create_certificates(str(keys), "server")
    client_public, client_secret = zmq.auth.create_certificates(str(keys), "client")
    _, stranger_secret = zmq.auth.create_certificates(str(keys), "stranger")
    (allowed / "client.key").write_text(pathlib.Path(client_public).read_text())
    buffer = filled_buffer(20)
    store = LabelStore(tmp_path / "labels.sqlite3")
    curve = {"curve_secret_key_file": pathlib.Path(server_secret), "curve_clients_dir": allowed}
    server = LabelServer(store, LABEL_NAMES, buffer.for_span, buffer.by_id, "tcp://127.0.0.1:0", **curve)
    server_public = pathlib.Path(keys / "server.key")
    with server:
        label = LabelRequest("c1", "walk", window_ids=(3,))
        reply = send_label(label, server.bound_endpoint, 5.0, 1, server_public, pathlib.Path(client_secret))
        assert reply["ok"] and reply["stored"] == 1
        with pytest.raises(Exception, match="no reply"):
            send_label(label, server.bound_endpoint, 0.5, 1, server_public, pathlib.Path(stranger_secret))
        with pytest.raises(Exception, match="no reply"):
            send_label(label, server.bound_endpoint, 0.5, 1)
    assert store.counts() == {"walk": 1}
    store.close()


def test_recent_windows_overlap_rule_and_capacity() -> None:
    buffer = RecentWindows(capacity=5)
    for k in range(8):
        buffer.add(make_window(k))
    assert len(buffer) == 5 and [w.window_id for w in buffer.by_id([1, 6, 3])] == [6, 3]
    end_ns = T0_NS + 5 * HOP_NS  # a 1 s span ending where window 5 ends
    # Windows 3..7 are buffered; 5, 6 and 7 have 1 s of their 2 s inside [end - 1 s, end], 4 only 0.5 s.
    assert [w.window_id for w in buffer.for_span(end_ns - 1_000_000_000, end_ns)] == [5, 6, 7]
    assert buffer.nbytes_per_window() == (120 * 6 + 40 * 20 * 3) * 4
    with pytest.raises(ValueError):
        RecentWindows(capacity=0)

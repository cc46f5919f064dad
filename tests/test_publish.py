"""ZeroMQ publisher: framing, seq and drops, status cadence, socket options, CURVE, the doc's subscriber."""

import re
import subprocess
import sys
import time
from pathlib import Path

import msgpack
import numpy as np
import pytest
import zmq

from cosmo_edge.publish import (
    SCHEMA_VERSION,
    TOPIC_CHANGE,
    TOPIC_STATUS,
    TOPIC_WINDOW,
    TOPICS,
    Publisher,
    change_payload,
    pack_message,
    unpack_message,
    window_payload,
)

PROTOCOL_DOC = Path(__file__).resolve().parents[1] / "docs" / "protocol.md"
DEADLINE_S = 10.0


def _window(i: int) -> dict:
    probs = np.array([0.2, 0.7, 0.1], dtype=np.float32)
    return window_payload(i, 1_000 + i, probs, ["sit", "walk", "wave"], "0123456789ab", 4.5, {"imu": True})


def _subscriber(endpoint: str, topic: bytes = b""):
    sub = zmq.Context.instance().socket(zmq.SUB)
    sub.setsockopt(zmq.RCVHWM, 1000)
    sub.setsockopt(zmq.LINGER, 0)
    sub.connect(endpoint)
    sub.setsockopt(zmq.SUBSCRIBE, topic)
    return sub


def _receive(sub, timeout_s: float = DEADLINE_S):
    if not sub.poll(int(timeout_s * 1000)):
        raise AssertionError("no message within the deadline")
    frames = sub.recv_multipart()
    assert len(frames) == 2
    return unpack_message(frames)


def _await_subscription(pub: Publisher, sub) -> None:
    """Slow joiner: wait for a status message, which proves the subscription reached the PUB."""
    while _receive(sub)[0] != TOPIC_STATUS:
        pass


def test_topics_are_not_prefixes_of_each_other() -> None:
    for a in TOPICS:
        assert not any(b != a and b.startswith(a) for b in TOPICS)


def test_messages_round_trip_with_common_fields() -> None:
    with Publisher("tcp://127.0.0.1:0", status_period_s=0.05) as pub:
        sub = _subscriber(pub.bound_endpoint)
        _await_subscription(pub, sub)
        assert pub.publish(TOPIC_WINDOW, _window(0)) == 0
        assert pub.publish(TOPIC_WINDOW, _window(1)) == 1
        assert pub.publish(TOPIC_CHANGE, change_payload(1, 1001, None, "walk", 0.7)) == 0
        got = []
        while len(got) < 3:
            topic, body = _receive(sub)
            if topic != TOPIC_STATUS:
                got.append((topic, body))
        sub.close()
    (t0, w0), (t1, w1), (t2, c0) = got
    assert (t0, t1, t2) == (TOPIC_WINDOW, TOPIC_WINDOW, TOPIC_CHANGE)
    assert (w0["seq"], w1["seq"], c0["seq"]) == (0, 1, 0)
    assert all(m["schema_version"] == SCHEMA_VERSION and m["t_ns"] > 0 for m in (w0, w1, c0))
    assert w0["label"] == "walk" and w0["probabilities"]["walk"] == pytest.approx(0.7)
    assert w0["model_version"] == "0123456789ab" and w0["window_id"] == 0 and w0["present"] == {"imu": True}
    assert c0["previous_label"] is None and c0["label"] == "walk"


def test_status_is_periodic_and_carries_counters() -> None:
    state = {"activity": "sit"}
    with Publisher("tcp://127.0.0.1:0", status_period_s=0.05, status_source=lambda: dict(state)) as pub:
        sub = _subscriber(pub.bound_endpoint, TOPIC_STATUS.encode())
        seqs = []
        while len(seqs) < 4:
            topic, body = _receive(sub)
            assert topic == TOPIC_STATUS and body["activity"] == "sit"
            assert set(body["publisher"]) == {"queued", "sent", "dropped", "send_errors", "queue_len"}
            seqs.append(body["seq"])
        sub.close()
    assert seqs == sorted(seqs) and len(set(seqs)) == 4


def test_unpackable_payload_fails_in_caller_and_leaves_stream_intact() -> None:
    with Publisher("tcp://127.0.0.1:0", status_period_s=0.05) as pub:
        sub = _subscriber(pub.bound_endpoint, TOPIC_WINDOW.encode())
        with pytest.raises(TypeError):
            pub.publish(TOPIC_WINDOW, {"bad": object()})
        with pytest.raises(ValueError):
            pub.publish("activity", {})
        deadline = time.monotonic() + DEADLINE_S
        while not sub.poll(50):  # slow joiner: publish until one arrives
            pub.publish(TOPIC_WINDOW, _window(0))
            assert time.monotonic() < deadline
        topic, body = unpack_message(sub.recv_multipart())
        sub.close()
    assert topic == TOPIC_WINDOW and body["seq"] == 0  # the failed publish consumed no seq


def test_numpy_values_are_converted() -> None:
    frames = pack_message(TOPIC_STATUS, {"a": np.float32(1.5), "b": np.arange(3), "c": (np.int64(2),)}, 7, 9)
    body = msgpack.unpackb(frames[1], raw=False)
    assert body["a"] == 1.5 and body["b"] == [0, 1, 2] and body["c"] == [2] and body["seq"] == 7


def test_full_queue_drops_oldest_and_keeps_seq_gaps() -> None:
    pub = Publisher("tcp://127.0.0.1:0", queue_size=3)
    for i in range(10):  # not started: nothing drains the queue
        pub.publish(TOPIC_WINDOW, _window(i))
    counters = pub.counters()
    assert counters["dropped"] == 7 and counters["queue_len"] == 3 and counters["queued"] == 10
    assert [unpack_message(f)[1]["seq"] for f in pub._queue] == [7, 8, 9]


def test_socket_options_set_before_bind(monkeypatch) -> None:
    calls = []

    class RecordingSocket(zmq.Socket):
        def setsockopt(self, option, value):
            calls.append(("set", option, value))
            return super().setsockopt(option, value)

        def bind(self, addr):
            calls.append(("bind", addr))
            return super().bind(addr)

    class RecordingContext(zmq.Context):
        _socket_class = RecordingSocket

    monkeypatch.setattr(zmq, "Context", RecordingContext)
    with Publisher("tcp://127.0.0.1:0", hwm=123):
        pass
    bind_at = calls.index(("bind", "tcp://127.0.0.1:0"))
    assert calls.index(("set", zmq.SNDHWM, 123)) < bind_at
    assert calls.index(("set", zmq.LINGER, 0)) < bind_at


def test_bind_failure_is_reported() -> None:
    with Publisher("tcp://127.0.0.1:0") as first:
        with pytest.raises(Exception, match="cannot publish"):
            Publisher(first.bound_endpoint).start()


@pytest.mark.skipif(not zmq.has("curve"), reason="libzmq without CURVE")
def test_curve_admits_only_listed_clients(tmp_path) -> None:
    import zmq.auth

    server_dir, clients_dir, other_dir = (tmp_path / d for d in ("server", "clients", "other"))
    for d in (server_dir, clients_dir, other_dir):
        d.mkdir()
    server_public_file, server_secret_file = zmq.auth.create_certificates(str(server_dir), "server")
    _, client_secret_file = zmq.auth.create_certificates(str(clients_dir), "client")
    _, stranger_secret_file = zmq.auth.create_certificates(str(other_dir), "stranger")
    server_public, _ = zmq.auth.load_certificate(server_public_file)

    def curve_sub(endpoint, secret_file):
        public, secret = zmq.auth.load_certificate(secret_file)
        sub = zmq.Context.instance().socket(zmq.SUB)
        sub.setsockopt(zmq.LINGER, 0)
        sub.curve_secretkey, sub.curve_publickey, sub.curve_serverkey = secret, public, server_public
        sub.connect(endpoint)
        sub.setsockopt(zmq.SUBSCRIBE, b"")
        return sub

    pub = Publisher(
        "tcp://127.0.0.1:0",
        status_period_s=0.05,
        curve_secret_key_file=Path(server_secret_file),
        curve_clients_dir=clients_dir,
    )
    with pub:
        listed = curve_sub(pub.bound_endpoint, client_secret_file)
        stranger = curve_sub(pub.bound_endpoint, stranger_secret_file)
        assert _receive(listed)[0] == TOPIC_STATUS
        assert not stranger.poll(500)  # ten status periods: nothing for an unlisted key
        listed.close()
        stranger.close()


def _doc_subscriber() -> str:
    text = PROTOCOL_DOC.read_text(encoding="utf-8")
    section = text.split("### Ten-line subscriber", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match, "no python block under 'Ten-line subscriber'"
    return match.group(1)


def test_protocol_doc_subscriber_runs_against_a_publisher(tmp_path) -> None:
    code = _doc_subscriber()
    assert len(code.strip().splitlines()) <= 10
    script = tmp_path / "sub.py"
    script.write_text(code)
    with Publisher("tcp://127.0.0.1:0", status_period_s=0.05) as pub:
        proc = subprocess.Popen(
            [sys.executable, str(script), pub.bound_endpoint], stdout=subprocess.PIPE, text=True
        )
        try:
            lines = []
            deadline = time.monotonic() + 30.0
            while not any(line.startswith(TOPIC_WINDOW) for line in lines):
                assert time.monotonic() < deadline and proc.poll() is None, lines
                pub.publish(TOPIC_WINDOW, _window(len(lines)))
                lines.append(proc.stdout.readline().strip())  # blocks until the script prints
        finally:
            proc.kill()
            proc.wait()
    window_line = next(line for line in lines if line.startswith(TOPIC_WINDOW))
    assert re.fullmatch(r"activity\.window \d+ walk", window_line), window_line
    assert any(line.startswith("status ") for line in lines) or lines[0].startswith(TOPIC_WINDOW)

"""Fuzzing the label wire format and the intake behind it (``cosmo_edge.labels``).

- ``decode_request`` on any frames returns a ``LabelRequest`` or raises ``ProtocolError`` with a
  documented code; an accepted request obeys every rule of the protocol docstring and round-trips
  through ``encode_request``; ``peek_id`` never raises;
- ``decode_reply`` on any bytes returns a reply map or raises ``ProtocolError``;
- ``LabelServer.handle`` (no sockets; a real SQLite store) answers every sequence of requests with
  an encodable reply, keeps its counters equal to what it replied, never gives one window two
  labels, stores exactly the windows it acknowledged, and answers a resent request ``duplicate``.
"""

import tempfile
from typing import Any, Dict, List

import msgpack
import pytest
from fuzz_support import fuzz_settings
from hypothesis import event, given
from hypothesis import strategies as st
from labels_support import LABEL_NAMES, T0_NS, filled_buffer

from cosmo_edge.labels import LabelServer, LabelStore
from cosmo_edge.labels import protocol as lp

_KEYS = ["schema_version", "id", "activity", "t_start_ns", "t_end_ns", "window_ids"]
_scalar = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**64 - 1),
    st.floats(allow_nan=True),
    st.text(max_size=20),
    st.binary(max_size=20),
)
_value = st.recursive(
    _scalar,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=12,
)
_field_values = {
    "schema_version": st.one_of(st.just(1), _value),
    "id": st.one_of(st.text(min_size=1, max_size=140), _value),
    "activity": st.one_of(st.sampled_from(LABEL_NAMES + ["WALK ", "fly", ""]), _value),
    "t_start_ns": st.one_of(st.integers(0, 2**63 - 1), _value),
    "t_end_ns": st.one_of(st.integers(0, 2**63 - 1), _value),
    "window_ids": st.one_of(st.lists(st.integers(-5, 2**64 - 1), max_size=300), _value),
}


@st.composite
def request_maps(draw) -> Dict[Any, Any]:
    """Maps with a random subset of the protocol's keys (any values) and sometimes a stranger."""
    keys = draw(st.lists(st.sampled_from(_KEYS), unique=True))
    body: Dict[Any, Any] = {key: draw(_field_values[key]) for key in keys}
    if draw(st.integers(0, 9)) == 0:
        body[draw(st.one_of(st.text(max_size=8), st.integers()))] = draw(_value)
    return body


def _packed(body: Any) -> bytes:
    try:
        return msgpack.packb(body, use_bin_type=True)
    except (OverflowError, ValueError, TypeError):
        return b"\xc1"  # not representable in msgpack: send the one never-used byte instead


def _check_accepted(request: lp.LabelRequest) -> None:
    assert 1 <= len(request.message_id) <= lp.MAX_ID_CHARS and request.message_id.isprintable()
    assert 1 <= len(request.activity) <= lp.MAX_ACTIVITY_CHARS
    if request.window_ids is not None:
        assert request.t_start_ns is None and request.t_end_ns is None
        assert 1 <= len(request.window_ids) <= lp.MAX_WINDOW_IDS
        assert len(set(request.window_ids)) == len(request.window_ids)
        assert all(type(w) is int and 0 <= w < 2**63 for w in request.window_ids)
    else:
        assert type(request.t_start_ns) is int and type(request.t_end_ns) is int
        assert 0 <= request.t_start_ns < request.t_end_ns <= request.t_start_ns + lp.MAX_SPAN_NS
    assert lp.decode_request([lp.encode_request(request)]) == request


def _decode_or_code(frames: List[bytes]) -> Any:
    try:
        request = lp.decode_request(frames)
    except lp.ProtocolError as exc:
        assert exc.code in lp.ERROR_CODES and "\n" not in exc.message
        return exc.code
    _check_accepted(request)
    return request


@fuzz_settings(300)
@given(
    st.lists(st.binary(max_size=300), max_size=3) | st.binary(min_size=4000, max_size=5000).map(lambda b: [b])
)
def test_any_frames_decode_or_raise_protocol_error(frames: List[bytes]) -> None:
    _decode_or_code(frames)
    peeked = lp.peek_id(frames)
    assert peeked is None or (isinstance(peeked, str) and len(peeked) <= lp.MAX_ID_CHARS)


@fuzz_settings(400)
@given(request_maps())
def test_structured_maps_decode_or_raise_protocol_error(body: Dict[Any, Any]) -> None:
    result = _decode_or_code([_packed(body)])
    if isinstance(result, lp.LabelRequest):
        assert set(body) <= set(_KEYS)


@fuzz_settings(200)
@given(
    st.binary(max_size=200)
    | _value.map(_packed)
    | st.dictionaries(st.sampled_from(["ok", "id", "error"]), _value).map(_packed)
)
def test_any_reply_bytes_decode_or_raise_protocol_error(frame: bytes) -> None:
    try:
        reply = lp.decode_reply(frame)
    except lp.ProtocolError as exc:
        assert exc.code == "malformed"
        return
    assert isinstance(reply, dict) and "ok" in reply


# Regression (found by this suite): describe_reply() trusted the reply's field types, so a reply map
# from a faulty or hostile server with "window_ids" that is not a list crashed `cosmo-edge label`.
@pytest.mark.parametrize("window_ids", [5, None, "abc", {"a": 1}, 2.5])
def test_describe_reply_with_a_malformed_map(window_ids: Any) -> None:
    line = lp.describe_reply({"ok": True, "window_ids": window_ids})
    assert line.startswith("ok") and "? windows" in line


# ----------------------------------------------------------------------------- the intake itself

_activities = st.sampled_from(["walk", "sit", "Stand Up", " WALK", "fly"])
_window_request = st.builds(
    lambda act, ids: {"schema_version": 1, "activity": act, "window_ids": ids},
    _activities,
    st.lists(st.integers(0, 45), min_size=1, max_size=6),
)
_span_request = st.builds(
    lambda act, start_s, length_s: {
        "schema_version": 1,
        "activity": act,
        "t_start_ns": T0_NS + int(start_s * 1e9),
        "t_end_ns": T0_NS + int((start_s + length_s) * 1e9),
    },
    _activities,
    st.floats(-3.0, 22.0),
    st.floats(0.001, 6.0),
)
# One step of a client session: a new message (ids are unique per message, as the UUIDs of real
# clients), an arbitrary map, raw frames, or a verbatim resend of an earlier step (a retry).
_intake_steps = st.one_of(
    st.tuples(st.just("new"), _window_request | _span_request),
    st.tuples(st.just("raw"), request_maps()),
    st.tuples(st.just("frames"), st.lists(st.binary(max_size=40), max_size=2)),
    st.tuples(st.just("resend"), st.integers(0, 10)),
)


def _session(steps: List[Any]) -> List[List[bytes]]:
    """The frames a client sends for ``steps``."""
    sent: List[List[bytes]] = []
    for index, (kind, value) in enumerate(steps):
        if kind == "resend":
            if sent:
                sent.append(sent[value % len(sent)])
            continue
        if kind == "frames":
            sent.append(value)
            continue
        body = dict(value)
        if kind == "new":
            body["id"] = f"msg-{index}"
        elif isinstance(body.get("id"), str):
            body["id"] = f"raw-{index}-{body['id'][:100]}"  # unique too; other types stay malformed
        sent.append([_packed(body)])
    return sent


# Regression (found by this suite): a request whose windows all carry its label already (stored
# under another message id) was answered duplicate without recording its own id, so the id could be
# used again for another label, and a retry of the first request was then refused as a conflict.
def test_id_of_an_all_duplicate_request_is_recorded() -> None:
    buffer = filled_buffer(40)
    with tempfile.TemporaryDirectory() as state_dir:
        store = LabelStore.in_state_dir(state_dir)
        try:
            server = LabelServer(store, LABEL_NAMES, buffer.for_span, buffer.by_id, session="fuzz")

            def send(message_id: str, activity: str, window_ids: List[int]) -> Dict[str, Any]:
                body = {"schema_version": 1, "id": message_id, "activity": activity, "window_ids": window_ids}
                return server.handle([_packed(body)])

            assert send("first", "walk", [0])["ok"]
            assert send("second", "walk", [0])["duplicate"]  # window 0 is walk already
            reused = send("second", "sit", [5])  # the same id for another label
            assert not reused["ok"] and reused["error"] == "conflict"
            retry = send("second", "walk", [0])  # a retry of the first request stays a duplicate
            assert retry["ok"] and retry["duplicate"] and retry["window_ids"] == [0]
            assert store.counts() == {"walk": 1}
        finally:
            store.close()


@fuzz_settings(60)
@given(st.lists(_intake_steps, min_size=1, max_size=7))
def test_intake_state_stays_consistent(steps: List[Any]) -> None:
    sequence = _session(steps)
    buffer = filled_buffer(40)
    with tempfile.TemporaryDirectory() as state_dir:
        store = LabelStore.in_state_dir(state_dir)
        try:
            server = LabelServer(store, LABEL_NAMES, buffer.for_span, buffer.by_id, session="fuzz")
            replies = []
            for frames in sequence:
                reply = server.handle(frames)
                assert lp.decode_reply(lp.encode_reply(reply)) == reply
                assert reply["schema_version"] == lp.SCHEMA_VERSION and isinstance(reply["ok"], bool)
                if not reply["ok"]:
                    assert reply["error"] in lp.ERROR_CODES and isinstance(reply["message"], str)
                replies.append((frames, reply))
            ok = [r for _, r in replies if r["ok"]]
            event("accepted requests: " + ("3+" if len(ok) >= 3 else str(len(ok))))
            event("some duplicate" if any(r["duplicate"] for r in ok) else "no duplicate")
            assert server.counters == {
                "requests": len(sequence),
                "errors": len(replies) - len(ok),
                "duplicates": sum(r["duplicate"] for r in ok),
                "stored_windows": sum(r["stored"] for r in ok if not r["duplicate"]),
            }
            labels: Dict[int, str] = {}
            for reply in ok:
                assert reply["activity"] in LABEL_NAMES
                for window_id in reply["window_ids"]:
                    assert labels.setdefault(window_id, reply["activity"]) == reply["activity"]
            counts = store.counts()
            assert sum(counts.values()) == server.counters["stored_windows"] == len(labels)
            for activity, count in counts.items():
                assert count == sum(a == activity for a in labels.values())
            for frames, reply in replies:  # a client that lost the reply resends the same frame
                if reply["ok"]:
                    again = server.handle(frames)
                    assert again["ok"] and again["duplicate"] and again["stored"] == 0
                    assert sorted(again["window_ids"]) == sorted(reply["window_ids"])
            assert store.integrity_check() == "ok"
        finally:
            store.close()

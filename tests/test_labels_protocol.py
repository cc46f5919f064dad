"""Label request decoding: every malformed, oversized or wrongly typed request names its problem."""

from typing import Any, Dict

import msgpack
import pytest

from cosmo_edge.labels.protocol import (
    MAX_MESSAGE_BYTES,
    MAX_SPAN_NS,
    LabelRequest,
    ProtocolError,
    decode_reply,
    decode_request,
    describe_reply,
    encode_reply,
    encode_request,
    error_reply,
    ok_reply,
    peek_id,
    resolve_activity,
)


def good(**changes: Any) -> Dict[str, Any]:
    body = {"schema_version": 1, "id": "m1", "activity": "walk", "t_start_ns": 10, "t_end_ns": 20}
    body.update(changes)
    return {k: v for k, v in body.items() if v is not ...}


def code_of(body: Any) -> str:
    with pytest.raises(ProtocolError) as info:
        decode_request([msgpack.packb(body, use_bin_type=True)])
    return info.value.code


def test_round_trip_span_and_window_ids() -> None:
    span = LabelRequest("m1", "walk", t_start_ns=10, t_end_ns=20)
    assert decode_request([encode_request(span)]) == span
    ids = LabelRequest("m2", "sit", window_ids=(3, 4, 3))
    assert decode_request([encode_request(ids)]).window_ids == (3, 4)


@pytest.mark.parametrize(
    "body, code",
    [
        (good(schema_version=2), "schema_version"),
        (good(schema_version=...), "schema_version"),
        (good(schema_version=True), "schema_version"),
        (good(schema_version=1.0), "schema_version"),  # the protocol says int; 1.0 == 1 in Python
        (good(schema_version="1"), "schema_version"),
        (good(id=...), "bad_field"),
        (good(id=""), "bad_field"),
        (good(id=5), "bad_field"),
        (good(id="x" * 129), "bad_field"),
        (good(activity=b"walk"), "bad_field"),
        (good(activity="walk\n"), "bad_field"),
        (good(t_start_ns="10"), "bad_field"),
        (good(t_start_ns=10.0), "bad_field"),
        (good(t_start_ns=True), "bad_field"),
        (good(t_start_ns=-1), "bad_field"),
        (good(t_end_ns=...), "bad_field"),
        (good(t_end_ns=10), "bad_field"),
        (good(t_end_ns=10 + MAX_SPAN_NS + 1), "bad_field"),
        (good(extra=1), "bad_field"),
        (good(window_ids=[1]), "bad_field"),
        (good(t_start_ns=..., t_end_ns=..., window_ids=[]), "bad_field"),
        (good(t_start_ns=..., t_end_ns=..., window_ids=[1, "2"]), "bad_field"),
        (good(t_start_ns=..., t_end_ns=..., window_ids=list(range(257))), "bad_field"),
        (good(t_start_ns=..., t_end_ns=..., window_ids=7), "bad_field"),
        ([1, 2], "malformed"),
        ("walk", "malformed"),
    ],
)
def test_bad_requests(body: Any, code: str) -> None:
    assert code_of(body) == code


def test_not_msgpack_multipart_and_oversized() -> None:
    for frames, code in (
        ([b"\xc1"], "malformed"),
        ([b"\x92\x01"], "malformed"),
        ([msgpack.packb({1: 2})], "malformed"),
        ([b"\xa2\xff\xfe"], "malformed"),
        ([encode_request(LabelRequest("m", "walk", 1, 2))] * 2, "malformed"),
        ([msgpack.packb(good(id="x" * 100, pad="y" * MAX_MESSAGE_BYTES))], "too_large"),
    ):
        with pytest.raises(ProtocolError) as info:
            decode_request(frames)
        assert info.value.code == code, frames[0][:20]


def test_peek_id_for_error_replies() -> None:
    assert peek_id([msgpack.packb(good(activity=3))]) == "m1"
    assert peek_id([b"\xc1"]) is None
    assert peek_id([msgpack.packb([1])]) is None


def test_activity_resolution() -> None:
    names = ["walk", "Stand Up"]
    assert resolve_activity(" stand up ", names) == "Stand Up"
    with pytest.raises(ProtocolError, match="unknown activity 'run'.*'walk'") as info:
        resolve_activity("run", names)
    assert info.value.code == "unknown_activity"


def test_replies() -> None:
    ok = decode_reply(encode_reply(ok_reply("m1", "walk", [1, 2], 2, False)))
    assert ok["ok"] and ok["window_ids"] == [1, 2] and "stored 2 new" in describe_reply(ok)
    err = decode_reply(encode_reply(error_reply("no_data", "nothing buffered", "m1")))
    assert not err["ok"] and describe_reply(err) == "error (no_data): nothing buffered"
    with pytest.raises(ValueError):
        error_reply("nope", "x")
    with pytest.raises(ProtocolError):
        decode_reply(b"\xc1")

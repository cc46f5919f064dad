"""The label intake's wire format: one msgpack map per request, one per reply (docs/protocol.md, "Labels").

A request is a single ZeroMQ frame of at most ``MAX_MESSAGE_BYTES`` holding a msgpack map with exactly
these keys (no others):

- ``schema_version``: int, ``SCHEMA_VERSION``;
- ``id``: str, 1..``MAX_ID_CHARS`` characters, chosen by the client (a UUID): the idempotency key;
- ``activity``: str, one of the model's class names (matched ignoring case and outer spaces);
- either ``t_start_ns`` and ``t_end_ns`` (ints, host ``CLOCK_MONOTONIC`` ns, start < end, span at most
  ``MAX_SPAN_NS``) or ``window_ids`` (list of 1..``MAX_WINDOW_IDS`` ints >= 0, as published in
  ``activity.window`` messages of the running daemon).

The reply is a msgpack map with ``schema_version``, ``ok`` (bool) and ``id`` (the request's id, or
None when it could not be read). On success: ``activity`` (canonical name), ``duplicate`` (True when
nothing new was written), ``stored`` (windows newly written) and ``window_ids`` (every window that
carries this label). On failure: ``error`` (one of ``ERROR_CODES``) and ``message`` (one line saying
what is wrong); a failed request changes nothing. Maps are packed with ``use_bin_type=True`` and
unpacked with ``raw=False``, the convention of ``cosmo_edge.publish``.
"""

import logging
from dataclasses import dataclass
from typing import Any, Dict, Optional, Sequence, Tuple

import msgpack

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 1
MAX_MESSAGE_BYTES = 4096
MAX_ID_CHARS = 128
MAX_ACTIVITY_CHARS = 64
MAX_WINDOW_IDS = 256
MAX_SPAN_NS = 120 * 10**9  # longest span one label may cover (120 s)
_INT64_MAX = 2**63 - 1

# error code -> meaning (also in docs/protocol.md)
ERROR_CODES: Dict[str, str] = {
    "malformed": "not one frame holding a msgpack map",
    "too_large": f"request longer than {MAX_MESSAGE_BYTES} bytes",
    "schema_version": f"schema_version is not {SCHEMA_VERSION}",
    "bad_field": "a missing, unknown, wrongly typed or out-of-range field",
    "unknown_activity": "activity is not one of the model's classes",
    "no_data": "no buffered window with data for the span or window ids",
    "conflict": "a window already carries a different label, or the id was used for another label",
    "storage": "the label store could not write; nothing was stored",
    "internal": "an unexpected server error; nothing was stored",
}
_SPAN_KEYS = ("t_start_ns", "t_end_ns")
_ALLOWED_KEYS = {"schema_version", "id", "activity", "window_ids", *_SPAN_KEYS}


class ProtocolError(ValueError):
    """A request that cannot be accepted; ``code`` is a key of ``ERROR_CODES``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


@dataclass(frozen=True)
class LabelRequest:
    """One decoded, type-checked label request (either a span or window ids, never both)."""

    message_id: str
    activity: str
    t_start_ns: Optional[int] = None
    t_end_ns: Optional[int] = None
    window_ids: Optional[Tuple[int, ...]] = None

    def to_map(self) -> Dict[str, Any]:
        """The request as the wire map."""
        body: Dict[str, Any] = {
            "schema_version": SCHEMA_VERSION,
            "id": self.message_id,
            "activity": self.activity,
        }
        if self.window_ids is not None:
            body["window_ids"] = list(self.window_ids)
        else:
            body.update(t_start_ns=self.t_start_ns, t_end_ns=self.t_end_ns)
        return body


def encode_request(request: LabelRequest) -> bytes:
    """The request frame; raises ProtocolError when it would be rejected by the server."""
    frame = msgpack.packb(request.to_map(), use_bin_type=True)
    decode_request([frame])  # the same checks the server runs
    return frame


def _int_field(body: Dict[str, Any], key: str, low: int = 0, high: int = _INT64_MAX) -> int:
    value = body[key]
    if isinstance(value, bool) or not isinstance(value, int):
        raise ProtocolError("bad_field", f"{key} must be an integer, got {type(value).__name__}")
    if not low <= value <= high:
        raise ProtocolError("bad_field", f"{key}={value} is outside {low}..{high}")
    return value


def _text_field(body: Dict[str, Any], key: str, max_chars: int) -> str:
    value = body.get(key)
    if not isinstance(value, str):
        raise ProtocolError("bad_field", f"{key} must be a string, got {type(value).__name__}")
    if not 1 <= len(value) <= max_chars or not value.isprintable():
        raise ProtocolError("bad_field", f"{key} must be 1..{max_chars} printable characters")
    return value


def decode_request(frames: Sequence[bytes]) -> LabelRequest:
    """Parse and check one request; raises ProtocolError naming the first problem."""
    if len(frames) != 1:
        raise ProtocolError("malformed", f"expected 1 frame, got {len(frames)}")
    size = len(frames[0])
    if size > MAX_MESSAGE_BYTES:
        raise ProtocolError("too_large", f"request has {size} bytes, at most {MAX_MESSAGE_BYTES}")
    try:
        body = msgpack.unpackb(bytes(frames[0]), raw=False, strict_map_key=True)
    except (ValueError, TypeError, msgpack.exceptions.UnpackException) as exc:
        raise ProtocolError("malformed", f"not a msgpack map ({type(exc).__name__}: {exc})") from None
    if not isinstance(body, dict):
        raise ProtocolError("malformed", f"expected a msgpack map, got {type(body).__name__}")
    unknown = sorted(str(k) for k in body if k not in _ALLOWED_KEYS)
    if unknown:
        raise ProtocolError("bad_field", f"unknown keys {unknown}; allowed: {sorted(_ALLOWED_KEYS)}")
    version = body.get("schema_version")
    if type(version) is not int or version != SCHEMA_VERSION:  # 1.0 and True compare equal to 1
        raise ProtocolError("schema_version", f"schema_version must be {SCHEMA_VERSION} (an integer)")
    message_id = _text_field(body, "id", MAX_ID_CHARS)
    activity = _text_field(body, "activity", MAX_ACTIVITY_CHARS)
    has_span = [k in body for k in _SPAN_KEYS]
    if "window_ids" in body:
        if any(has_span):
            raise ProtocolError("bad_field", "give either t_start_ns/t_end_ns or window_ids, not both")
        return LabelRequest(message_id, activity, window_ids=_window_ids(body["window_ids"]))
    if not all(has_span):
        raise ProtocolError("bad_field", "need t_start_ns and t_end_ns, or window_ids")
    start_ns, end_ns = _int_field(body, "t_start_ns"), _int_field(body, "t_end_ns")
    if end_ns <= start_ns:
        raise ProtocolError("bad_field", f"t_end_ns ({end_ns}) must be after t_start_ns ({start_ns})")
    if end_ns - start_ns > MAX_SPAN_NS:
        raise ProtocolError(
            "bad_field", f"span of {(end_ns - start_ns) / 1e9:.1f} s exceeds {MAX_SPAN_NS / 1e9:.0f} s"
        )
    return LabelRequest(message_id, activity, t_start_ns=start_ns, t_end_ns=end_ns)


def peek_id(frames: Sequence[bytes]) -> Optional[str]:
    """The request's ``id`` when it can be read at all (for error replies), else None."""
    if len(frames) != 1 or len(frames[0]) > MAX_MESSAGE_BYTES:
        return None
    try:
        body = msgpack.unpackb(bytes(frames[0]), raw=False)
    except (ValueError, TypeError, msgpack.exceptions.UnpackException):
        return None
    value = body.get("id") if isinstance(body, dict) else None
    return value if isinstance(value, str) and len(value) <= MAX_ID_CHARS else None


def _window_ids(value: Any) -> Tuple[int, ...]:
    """Checked window ids, duplicates removed, order kept."""
    if not isinstance(value, list) or not 1 <= len(value) <= MAX_WINDOW_IDS:
        raise ProtocolError("bad_field", f"window_ids must be a list of 1..{MAX_WINDOW_IDS} integers")
    ids = [_int_field({"window_ids[]": v}, "window_ids[]") for v in value]
    return tuple(dict.fromkeys(ids))


def resolve_activity(activity: str, label_names: Sequence[str]) -> str:
    """The class name ``activity`` names (case and outer spaces ignored); ProtocolError otherwise."""
    wanted = activity.strip().casefold()
    for name in label_names:
        if name.strip().casefold() == wanted:
            return name
    shown = ", ".join(repr(n) for n in list(label_names)[:30])
    more = f" and {len(label_names) - 30} more" if len(label_names) > 30 else ""
    raise ProtocolError("unknown_activity", f"unknown activity {activity!r}; classes: {shown}{more}")


def ok_reply(
    message_id: str, activity: str, window_ids: Sequence[int], stored: int, duplicate: bool
) -> Dict[str, Any]:
    """Reply map of an accepted (or already stored) label."""
    return {
        "schema_version": SCHEMA_VERSION,
        "ok": True,
        "id": message_id,
        "activity": activity,
        "duplicate": bool(duplicate),
        "stored": int(stored),
        "window_ids": [int(w) for w in window_ids],
    }


def error_reply(code: str, message: str, message_id: Optional[str] = None) -> Dict[str, Any]:
    """Reply map of a rejected request."""
    if code not in ERROR_CODES:
        raise ValueError(f"unknown error code {code!r}")
    return {
        "schema_version": SCHEMA_VERSION,
        "ok": False,
        "id": message_id,
        "error": code,
        "message": message,
    }


def encode_reply(reply: Dict[str, Any]) -> bytes:
    """The reply frame."""
    return msgpack.packb(reply, use_bin_type=True)


def decode_reply(frame: bytes) -> Dict[str, Any]:
    """The client side: reply frame -> map (raises ProtocolError when it is not a reply map)."""
    try:
        body = msgpack.unpackb(frame, raw=False)
    except (ValueError, TypeError, msgpack.exceptions.UnpackException) as exc:
        raise ProtocolError("malformed", f"reply is not msgpack ({exc})") from None
    if not isinstance(body, dict) or "ok" not in body:
        raise ProtocolError("malformed", "reply is not a label reply map")
    return body


def describe_reply(reply: Dict[str, Any]) -> str:
    """One human line for a reply (what ``cosmo-edge label`` prints)."""
    if reply.get("ok"):
        ids = reply.get("window_ids")
        count = len(ids) if isinstance(ids, list) else "?"  # a faulty server's map must not crash us
        what = "already stored" if reply.get("duplicate") else f"stored {reply.get('stored')} new"
        return f"ok: {what}; {count} windows labeled {reply.get('activity')!r} (id {reply.get('id')})"
    return f"error ({reply.get('error')}): {reply.get('message')}"

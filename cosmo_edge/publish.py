"""ZeroMQ PUB of predictions, activity changes and status (docs/protocol.md, "ZeroMQ messages").

Guarantees and conventions (docs/platform.md section 5):

- every message is two frames: a UTF-8 topic (``TOPICS``; none is a prefix of another, since SUB
  matches by prefix) and a msgpack map packed with ``use_bin_type=True`` that always holds
  ``schema_version``, ``seq`` (per topic, from 0, in send order) and ``t_ns`` (host monotonic ns);
- the map is packed in ``publish()``, in the producer's thread, BEFORE anything is queued or sent, so
  an unpackable payload raises there and can never leave a lone topic frame on the socket; numpy
  scalars and arrays are converted to plain Python first (msgpack rejects them);
- producers never block and never touch the socket: ``publish()`` appends to a bounded drop-oldest
  queue; one publisher thread owns the socket (ZeroMQ sockets are not thread-safe). A dropped message
  keeps its ``seq``, so subscribers see the gap; drops are counted and reported in ``status``;
- the socket gets SNDHWM and LINGER=0 before bind (options apply to later binds only; LINGER=0 so
  stop never hangs), binds loopback by default; CURVE with a ZAP allow-list of client keys otherwise;
- ``status`` goes out every ``status_period_s`` whatever else happens, so a late subscriber (slow
  joiner) learns the current state within one period.
"""

import collections
import logging
import threading
import time
from pathlib import Path
from typing import Any, Callable, Deque, Dict, List, Mapping, Optional, Sequence, Tuple

import msgpack
import numpy as np

from cosmo_edge.zmq_server import bind_server_socket, run_socket_thread

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 1
TOPIC_WINDOW = "activity.window"
TOPIC_CHANGE = "activity.change"
TOPIC_STATUS = "status"
TOPICS: Tuple[str, ...] = (TOPIC_WINDOW, TOPIC_CHANGE, TOPIC_STATUS)
DEFAULT_ENDPOINT = "tcp://127.0.0.1:5556"


class PublishError(RuntimeError):
    """The publisher could not start (bind failed, bad CURVE keys) or is not running."""


def plain(value: Any) -> Any:
    """``value`` with numpy scalars/arrays and tuples turned into msgpack-able Python objects."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def pack_message(topic: str, payload: Mapping[str, Any], seq: int, t_ns: int) -> List[bytes]:
    """Both frames of one message; raises ``TypeError``/``ValueError`` for an unpackable payload."""
    if topic not in TOPICS:
        raise ValueError(f"unknown topic {topic!r}; topics: {TOPICS}")
    body = plain(payload)
    body.update(schema_version=SCHEMA_VERSION, seq=int(seq), t_ns=int(t_ns))
    return [topic.encode("utf-8"), msgpack.packb(body, use_bin_type=True)]


def unpack_message(frames: Sequence[bytes]) -> Tuple[str, Dict[str, Any]]:
    """``(topic, map)`` from the two frames of a message (the subscriber side)."""
    if len(frames) != 2:
        raise ValueError(f"expected 2 frames, got {len(frames)}")
    return frames[0].decode("utf-8"), msgpack.unpackb(frames[1], raw=False)


def window_payload(
    window_id: int,
    window_end_ns: int,
    probabilities: Sequence[float],
    label_names: Sequence[str],
    model_version: str,
    latency_ms: float,
    present: Optional[Mapping[str, bool]] = None,
) -> Dict[str, Any]:
    """Body of an ``activity.window`` message (one classified window)."""
    probs = [float(p) for p in probabilities]
    if len(probs) != len(label_names):
        raise ValueError(f"{len(probs)} probabilities for {len(label_names)} labels")
    best = int(np.argmax(probs))
    return {
        "window_id": int(window_id),
        "window_end_ns": int(window_end_ns),
        "label": str(label_names[best]),
        "confidence": probs[best],
        "probabilities": {str(name): p for name, p in zip(label_names, probs)},
        "model_version": str(model_version),
        "latency_ms": float(latency_ms),
        "present": {str(k): bool(v) for k, v in (present or {}).items()},
    }


def change_payload(
    window_id: int, window_end_ns: int, previous_label: Optional[str], label: str, confidence: float
) -> Dict[str, Any]:
    """Body of an ``activity.change`` message (the recognised activity switched)."""
    return {
        "window_id": int(window_id),
        "window_end_ns": int(window_end_ns),
        "previous_label": previous_label,
        "label": str(label),
        "confidence": float(confidence),
    }


class Publisher:
    """The one PUB socket of the daemon, driven by its own thread; see the module docstring.

    Args:
        endpoint: bind endpoint (``tcp://127.0.0.1:5556``, ``ipc:///run/cosmo-edge/pub.sock``).
        hwm: SNDHWM in messages.
        queue_size: capacity of the drop-oldest queue between producers and the thread (messages).
        status_period_s: period of ``status`` messages (s).
        status_source: called by the publisher thread for the daemon's part of each status body.
        curve_secret_key_file: server secret key (``zmq.auth`` format); enables CURVE.
        curve_clients_dir: directory of allowed client public keys (required with CURVE).
    """

    def __init__(
        self,
        endpoint: str = DEFAULT_ENDPOINT,
        hwm: int = 1000,
        queue_size: int = 256,
        status_period_s: float = 1.0,
        status_source: Optional[Callable[[], Mapping[str, Any]]] = None,
        curve_secret_key_file: Optional[Path] = None,
        curve_clients_dir: Optional[Path] = None,
    ) -> None:
        if (curve_secret_key_file is None) != (curve_clients_dir is None):
            raise ValueError("CURVE needs both curve_secret_key_file and curve_clients_dir")
        self.endpoint = endpoint
        self.hwm = int(hwm)
        self.status_period_s = float(status_period_s)
        self.status_source = status_source
        self.curve = (curve_secret_key_file, curve_clients_dir) if curve_secret_key_file else None
        self._queue: Deque[List[bytes]] = collections.deque(maxlen=int(queue_size))
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._seq = {topic: 0 for topic in TOPICS}
        self._stop = False
        self._thread: Optional[threading.Thread] = None
        self._ready = threading.Event()
        self._start_error: Optional[BaseException] = None
        self.queued = 0
        self.dropped = 0
        self.sent = 0
        self.send_errors = 0
        self.bound_endpoint: Optional[str] = None

    def __enter__(self) -> "Publisher":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def counters(self) -> Dict[str, int]:
        """Messages queued, sent, dropped (queue full) and failed sends so far."""
        with self._lock:
            return {
                "queued": self.queued,
                "sent": self.sent,
                "dropped": self.dropped,
                "send_errors": self.send_errors,
                "queue_len": len(self._queue),
            }

    def start(self, timeout_s: float = 5.0) -> None:
        """Start the thread, which binds; raises ``PublishError`` when binding fails."""
        if self._thread is not None:
            raise PublishError("publisher already started")
        self._thread = threading.Thread(target=self._run, name="cosmo-publisher", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout_s):
            raise PublishError(f"publisher did not bind {self.endpoint} within {timeout_s} s")
        if self._start_error is not None:
            self._thread.join()
            raise PublishError(
                f"cannot publish on {self.endpoint}: {self._start_error}"
            ) from self._start_error
        logger.info("publishing on %s (hwm %d, queue %d)", self.bound_endpoint, self.hwm, self._queue.maxlen)

    def stop(self, timeout_s: float = 2.0) -> None:
        """Stop the thread and close the socket (LINGER=0: unsent messages are discarded)."""
        with self._wake:
            self._stop = True
            self._wake.notify()
        if self._thread is not None:
            self._thread.join(timeout_s)
            if self._thread.is_alive():
                logger.warning("publisher thread did not stop within %.1f s", timeout_s)
            self._thread = None

    def publish(self, topic: str, payload: Mapping[str, Any]) -> int:
        """Pack and queue one message; never blocks. Returns its ``seq``; drops the oldest when full."""
        with self._wake:
            seq = self._seq.get(topic, 0)
            frames = pack_message(topic, payload, seq, time.monotonic_ns())  # raises before any state change
            self._seq[topic] = seq + 1
            if len(self._queue) == self._queue.maxlen:
                self.dropped += 1
            self._queue.append(frames)
            self.queued += 1
            self._wake.notify()
        return seq

    def _status_frames(self) -> List[bytes]:
        body: Dict[str, Any] = {}
        if self.status_source is not None:
            try:
                body.update(self.status_source())
            except Exception as exc:  # noqa: BLE001 - a status callback bug must not stop publishing
                logger.exception("status source failed")
                body["status_error"] = repr(exc)
        body["publisher"] = self.counters()
        with self._lock:
            seq = self._seq[TOPIC_STATUS]
            frames = pack_message(TOPIC_STATUS, body, seq, time.monotonic_ns())
            self._seq[TOPIC_STATUS] = seq + 1
        return frames

    def _open_socket(self, context: Any) -> Tuple[Any, Any]:
        """PUB socket with its HWM and LINGER set before bind, plus the ZAP authenticator under CURVE."""
        import zmq

        options = {zmq.SNDHWM: self.hwm, zmq.LINGER: 0}
        socket, authenticator, self.bound_endpoint = bind_server_socket(
            context, zmq.PUB, self.endpoint, options, self.curve
        )
        return socket, authenticator

    def _run(self) -> None:
        import zmq

        errors = (zmq.ZMQError, OSError, ValueError, PublishError)
        run_socket_thread(self._open_socket, self._loop, self._ready, errors, self._record_start_error)

    def _record_start_error(self, exc: BaseException) -> None:
        self._start_error = exc

    def _loop(self, socket: Any) -> None:
        import zmq

        next_status = time.monotonic()
        while True:
            with self._wake:
                while not self._queue and not self._stop and time.monotonic() < next_status:
                    self._wake.wait(max(0.0, next_status - time.monotonic()))
                if self._stop:
                    return
                batch = list(self._queue)
                self._queue.clear()
            if time.monotonic() >= next_status:
                batch.append(self._status_frames())
                next_status += self.status_period_s
                if next_status < time.monotonic():  # fell behind (suspend, stall): do not burst
                    next_status = time.monotonic() + self.status_period_s
            for frames in batch:
                try:
                    socket.send_multipart(frames)
                except zmq.ZMQError as exc:
                    with self._lock:
                        self.send_errors += 1
                    logger.warning("send on %s failed: %s", self.bound_endpoint, exc)
                else:
                    with self._lock:
                        self.sent += 1

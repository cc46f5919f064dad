"""Label intake over ZeroMQ: a REP socket that turns label messages into durable labeled windows.

Guarantees (the wire format is in ``cosmo_edge.labels.protocol`` and docs/protocol.md, "Labels"):

- every request gets exactly one reply (REP lockstep), also for garbage; requests above
  ``HARD_MAX_BYTES`` make ZeroMQ drop the connection instead (memory guard), anything smaller but
  over the protocol limit gets a ``too_large`` reply;
- an ``ok`` reply is sent only after the store committed (WAL, ``synchronous=FULL``): a client that
  got it can rely on the label surviving a crash; an error reply means nothing was written;
- retries are safe: a message id already stored is answered ``duplicate`` before the windows are
  looked up, so it works even after the windows left the buffer;
- one thread owns the socket; the window look-ups (``windows_for_span``, ``windows_by_id``) are
  called from it and must be thread-safe (``RecentWindows`` is);
- binds loopback by default; CURVE with a ZAP allow-list of client keys otherwise, as the publisher.
"""

import logging
import sqlite3
import threading
import uuid
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from cosmo_edge.labels.protocol import (
    LabelRequest,
    ProtocolError,
    decode_request,
    encode_reply,
    error_reply,
    ok_reply,
    peek_id,
    resolve_activity,
)
from cosmo_edge.labels.records import ArrayCodecError, LabelMessage
from cosmo_edge.labels.store import LabelConflictError, LabelStore, LabelStoreError
from cosmo_edge.zmq_server import bind_server_socket, run_socket_thread

logger = logging.getLogger(__name__)

DEFAULT_ENDPOINT = "tcp://127.0.0.1:5557"
HARD_MAX_BYTES = 1 << 20  # ZMQ_MAXMSGSIZE: larger requests drop the connection without a reply
POLL_MS = 100  # how often the thread checks for stop

WindowsForSpan = Callable[[int, int], List[Any]]
WindowsById = Callable[[Sequence[int]], List[Any]]


class LabelServerError(RuntimeError):
    """The server could not start (bind failed, bad CURVE keys)."""


class LabelServer:
    """Background thread answering label requests; use as a context manager or start()/stop().

    Args:
        store: where labels go (shared safely with other threads).
        label_names: the model's classes; a label must name one of them.
        windows_for_span: (t_start_ns, t_end_ns) -> buffered windows of that span.
        windows_by_id: window ids -> the buffered windows among them.
        endpoint: bind endpoint (``tcp://127.0.0.1:0`` picks a free port; see ``bound_endpoint``).
        session: key that makes this run's window ids unique in the store (default: a new UUID).
        curve_secret_key_file / curve_clients_dir: enable CURVE (both or neither).
    """

    def __init__(
        self,
        store: LabelStore,
        label_names: Sequence[str],
        windows_for_span: WindowsForSpan,
        windows_by_id: WindowsById,
        endpoint: str = DEFAULT_ENDPOINT,
        session: Optional[str] = None,
        curve_secret_key_file: Optional[Path] = None,
        curve_clients_dir: Optional[Path] = None,
    ) -> None:
        if (curve_secret_key_file is None) != (curve_clients_dir is None):
            raise ValueError("CURVE needs both curve_secret_key_file and curve_clients_dir")
        self.store = store
        self.label_names = list(label_names)
        self.windows_for_span = windows_for_span
        self.windows_by_id = windows_by_id
        self.endpoint = endpoint
        self.session = session or uuid.uuid4().hex
        self.curve = (curve_secret_key_file, curve_clients_dir) if curve_secret_key_file else None
        self.bound_endpoint: Optional[str] = None
        self.counters: Dict[str, int] = {"requests": 0, "stored_windows": 0, "duplicates": 0, "errors": 0}
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._start_error: Optional[BaseException] = None
        self._thread: Optional[threading.Thread] = None

    def __enter__(self) -> "LabelServer":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self, timeout_s: float = 5.0) -> None:
        """Bind and start answering; raises LabelServerError when the socket cannot be opened."""
        self._stop.clear()
        self._ready.clear()
        self._thread = threading.Thread(target=self._run, name="label-server", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout_s):
            raise LabelServerError(f"label server did not start within {timeout_s} s")
        if self._start_error is not None:
            raise LabelServerError(f"cannot bind {self.endpoint}: {self._start_error}") from self._start_error
        logger.info("label intake on %s (session %s)", self.bound_endpoint, self.session)

    def stop(self, timeout_s: float = 2.0) -> None:
        """Stop the thread (a request being written finishes first)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            if self._thread.is_alive():
                logger.warning("label server thread still running after %.1f s", timeout_s)
            self._thread = None

    def handle(self, frames: Sequence[bytes]) -> Dict[str, Any]:
        """The reply map for one request; stores the label before returning an ``ok`` reply."""
        self.counters["requests"] += 1
        message_id: Optional[str] = None
        try:
            request = decode_request(frames)
            message_id = request.message_id
            reply = self._label(request)
        except ProtocolError as exc:
            reply = error_reply(exc.code, exc.message, message_id or peek_id(frames))
        except LabelConflictError as exc:
            reply = error_reply("conflict", str(exc), message_id)
        except (LabelStoreError, ArrayCodecError, sqlite3.Error, OSError) as exc:
            logger.error("label %s not stored: %s", message_id, exc)
            reply = error_reply("storage", f"not stored: {exc}", message_id)
        except Exception as exc:  # a reply must always go out (REP lockstep); the cause is logged
            logger.exception("label %s failed", message_id)
            reply = error_reply("internal", f"not stored: {type(exc).__name__}: {exc}", message_id)
        if not reply["ok"]:
            self.counters["errors"] += 1
            logger.info("label %s refused: %s: %s", message_id, reply["error"], reply["message"])
        elif reply["duplicate"]:
            self.counters["duplicates"] += 1
        else:
            self.counters["stored_windows"] += reply["stored"]
        return reply

    def _label(self, request: LabelRequest) -> Dict[str, Any]:
        """Resolve the activity and the windows, store them, build the ok reply."""
        activity = resolve_activity(request.activity, self.label_names)
        previous = self.store.find_event(request.message_id)
        if previous is not None:
            if previous.activity != activity:
                raise LabelConflictError(
                    f"id {request.message_id!r} was already used to label {previous.activity!r}"
                )
            return ok_reply(request.message_id, activity, previous.window_ids, 0, duplicate=True)
        windows, what = self._windows(request)
        with_data = [w for w in windows if any(w.present.values())]
        if not with_data:
            raise ProtocolError("no_data", f"no buffered window with sensor data for {what}")
        message = LabelMessage(
            request.message_id,
            activity,
            self.session,
            t_start_ns=request.t_start_ns,
            t_end_ns=request.t_end_ns,
            requested_window_ids=request.window_ids,
        )
        result = self.store.add_label(message, with_data)
        return ok_reply(request.message_id, activity, result.window_ids, result.stored, result.duplicate)

    def _windows(self, request: LabelRequest) -> Tuple[List[Any], str]:
        """The buffered windows a request names, and a phrase describing what it asked for."""
        if request.window_ids is not None:
            windows = list(self.windows_by_id(list(request.window_ids)))
            missing = sorted(set(request.window_ids) - {int(w.window_id) for w in windows})
            if missing:
                raise ProtocolError(
                    "no_data", f"windows {missing[:20]} are not buffered (too old or unknown)"
                )
            return windows, f"window ids {list(request.window_ids)[:20]}"
        assert request.t_start_ns is not None and request.t_end_ns is not None
        span_s = (request.t_end_ns - request.t_start_ns) / 1e9
        what = f"span {request.t_start_ns}..{request.t_end_ns} ns ({span_s:.2f} s)"
        return list(self.windows_for_span(request.t_start_ns, request.t_end_ns)), what

    def _open_socket(self, context: Any) -> Tuple[Any, Any]:
        """REP socket with LINGER and the hard size limit set before bind; the ZAP handler under CURVE."""
        import zmq

        options = {zmq.LINGER: 0, zmq.MAXMSGSIZE: HARD_MAX_BYTES}
        socket, authenticator, self.bound_endpoint = bind_server_socket(
            context, zmq.REP, self.endpoint, options, self.curve
        )
        return socket, authenticator

    def _run(self) -> None:
        import zmq

        errors = (zmq.ZMQError, OSError, ValueError, LabelServerError)
        run_socket_thread(self._open_socket, self._serve, self._ready, errors, self._record_start_error)

    def _record_start_error(self, exc: BaseException) -> None:
        self._start_error = exc

    def _serve(self, socket: Any) -> None:
        """Receive, handle, reply, until stop."""
        import zmq

        while not self._stop.is_set():
            if not socket.poll(POLL_MS, zmq.POLLIN):
                continue
            frames = socket.recv_multipart(copy=True)
            reply = self.handle(frames)
            try:
                socket.send(encode_reply(reply))
            except zmq.ZMQError as exc:
                logger.warning("reply to label %s not sent: %s", reply.get("id"), exc)

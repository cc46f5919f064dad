"""A ZeroMQ SUB client for the daemon's messages, driving a ``LiveView`` (``cosmo-edge subscribe``).

It connects (the daemon binds), subscribes to every topic, sets RCVHWM before connecting, drains
whatever arrived without blocking, hands each message to the view and redraws the view every
``refresh_s``. It ends when ``stop`` is set or ``duration_s`` passed.
"""

import logging
import threading
import time
from typing import Callable, Optional

from cosmo_edge.daemon.view import LiveView
from cosmo_edge.publish import unpack_message

logger = logging.getLogger(__name__)

POLL_MS = 50


def watch(
    endpoint: str,
    view: LiveView,
    draw: Optional[Callable[[LiveView], None]] = None,
    stop: Optional[threading.Event] = None,
    duration_s: Optional[float] = None,
    refresh_s: float = 0.25,
    rcvhwm: int = 1000,
) -> None:
    """Receive from ``endpoint`` into ``view``; call ``draw(view)`` every ``refresh_s`` and at the end."""
    import zmq

    stop = stop or threading.Event()
    deadline = None if duration_s is None else time.monotonic() + duration_s
    context = zmq.Context()
    socket = context.socket(zmq.SUB)
    try:
        socket.setsockopt(zmq.RCVHWM, rcvhwm)
        socket.setsockopt(zmq.LINGER, 0)
        socket.setsockopt(zmq.SUBSCRIBE, b"")
        socket.connect(endpoint)
        poller = zmq.Poller()
        poller.register(socket, zmq.POLLIN)
        next_draw = time.monotonic()
        while not stop.is_set() and (deadline is None or time.monotonic() < deadline):
            if poller.poll(POLL_MS):
                _drain(socket, view)
            if draw is not None and time.monotonic() >= next_draw:
                draw(view)
                next_draw = time.monotonic() + refresh_s
        if draw is not None:
            draw(view)
    finally:
        socket.close(linger=0)
        context.term()


def _drain(socket: object, view: LiveView) -> None:
    """Hand every waiting message to the view (NOBLOCK until EAGAIN)."""
    import zmq

    while True:
        try:
            frames = socket.recv_multipart(zmq.NOBLOCK)  # type: ignore[attr-defined]
        except zmq.Again:
            return
        receipt_ns = time.monotonic_ns()
        try:
            topic, message = unpack_message(frames)
        except (ValueError, UnicodeDecodeError) as exc:
            logger.warning("dropped a malformed message: %s", exc)
            continue
        view.handle(topic, message, receipt_ns)

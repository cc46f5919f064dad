"""The life of a ZeroMQ server socket that one background thread owns: bind, serve, close.

ZeroMQ sockets are not thread-safe, so the prediction publisher and the label server each create,
use and close their socket inside their own thread. Both need the same care, kept here once: options
set before ``bind``, CURVE's ZAP handler started before ``bind``, everything closed again when the bind
fails (an open socket makes ``context.term()`` hang), and the bind error handed to the thread that
called ``start`` before it is woken.
"""

import threading
from typing import Any, Callable, Mapping, Optional, Tuple, Type

from cosmo_edge.zmq_curve import start_curve_server

CurveKeys = Tuple[Any, Any]  # (server secret-key file, directory of admitted client public keys)


def bind_server_socket(
    context: Any, socket_type: int, endpoint: str, options: Mapping[int, int], curve: Optional[CurveKeys]
) -> Tuple[Any, Any, str]:
    """A bound socket with ``options`` (and CURVE when ``curve`` is given).

    Returns (socket, authenticator or None, the endpoint actually bound, e.g. with the chosen port).
    """
    import zmq

    socket = context.socket(socket_type)
    authenticator = None
    try:
        for option, value in options.items():
            socket.setsockopt(option, value)
        if curve is not None:
            authenticator = start_curve_server(context, socket, *curve)
        socket.bind(endpoint)
    except BaseException:
        socket.close(linger=0)
        if authenticator is not None:
            authenticator.stop()
        raise
    return socket, authenticator, socket.getsockopt_string(zmq.LAST_ENDPOINT)


def run_socket_thread(
    open_socket: Callable[[Any], Tuple[Any, Any]],
    serve: Callable[[Any], None],
    ready: threading.Event,
    start_errors: Tuple[Type[BaseException], ...],
    record_start_error: Callable[[BaseException], None],
) -> None:
    """The body of a socket thread: open, set ``ready`` either way, serve until ``serve`` returns, close.

    ``open_socket(context)`` returns (socket, authenticator or None). An error of ``start_errors``
    while opening is passed to ``record_start_error`` before ``ready`` is set, so ``start`` can raise it.
    """
    import zmq

    context = zmq.Context()
    socket = authenticator = None
    try:
        try:
            socket, authenticator = open_socket(context)
        except start_errors as exc:
            record_start_error(exc)
            return
        finally:
            ready.set()
        serve(socket)
    finally:
        if socket is not None:
            socket.close(linger=0)
        if authenticator is not None:
            authenticator.stop()
        context.term()

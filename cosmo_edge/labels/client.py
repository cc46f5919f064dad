"""Send one label to the daemon's label intake and wait for the durable acknowledgement.

REQ sockets are strict lockstep: after a timeout the socket is unusable, so each attempt uses a
fresh socket and the SAME message id. A retry after a lost reply is therefore answered
``duplicate`` instead of storing the label twice.
"""

import logging
from pathlib import Path
from typing import Any, Dict, Optional

from cosmo_edge.labels.protocol import LabelRequest, decode_reply, encode_request

logger = logging.getLogger(__name__)


class LabelClientError(RuntimeError):
    """No reply came from the label intake (daemon down, wrong endpoint, CURVE keys refused)."""


def send_label(
    request: LabelRequest,
    endpoint: str,
    timeout_s: float = 5.0,
    attempts: int = 2,
    server_public_key_file: Optional[Path] = None,
    client_secret_key_file: Optional[Path] = None,
) -> Dict[str, Any]:
    """The reply map of ``request``; raises LabelClientError when no attempt got a reply.

    CURVE is used when both key files are given (``zmq.auth`` certificate files).
    """
    import zmq

    frame = encode_request(request)
    context = zmq.Context.instance()
    for attempt in range(1, max(1, attempts) + 1):
        socket = context.socket(zmq.REQ)
        socket.setsockopt(zmq.LINGER, 0)
        socket.setsockopt(zmq.RCVTIMEO, int(timeout_s * 1000))
        socket.setsockopt(zmq.SNDTIMEO, int(timeout_s * 1000))
        try:
            if server_public_key_file is not None and client_secret_key_file is not None:
                import zmq.auth

                socket.curve_serverkey, _ = zmq.auth.load_certificate(str(server_public_key_file))
                socket.curve_publickey, socket.curve_secretkey = zmq.auth.load_certificate(
                    str(client_secret_key_file)
                )
            socket.connect(endpoint)
            socket.send(frame)
            return decode_reply(socket.recv())
        except zmq.Again:
            logger.warning(
                "no reply from %s within %.1f s (attempt %d of %d)", endpoint, timeout_s, attempt, attempts
            )
        finally:
            socket.close(linger=0)
    raise LabelClientError(f"no reply from the label intake at {endpoint} after {attempts} attempts")

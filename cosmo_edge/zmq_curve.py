"""CURVE for the daemon's ZeroMQ server sockets: one key pair from a certificate file, a ZAP allow-list.

Without a ZAP handler any client knowing the server key gets through (encryption only), so the
authenticator is always started with the directory of admitted client public keys.
"""

from pathlib import Path
from typing import Any


class CurveSetupError(ValueError):
    """The server key file or the client allow-list is unusable."""


def start_curve_server(context: Any, socket: Any, secret_key_file: Path, clients_dir: Path) -> Any:
    """Make ``socket`` a CURVE server and start the ZAP handler; returns the authenticator to stop later."""
    import zmq.auth
    from zmq.auth.thread import ThreadAuthenticator

    public, secret = zmq.auth.load_certificate(str(secret_key_file))
    if secret is None:
        raise CurveSetupError(f"{secret_key_file} holds no secret key")
    if not Path(clients_dir).is_dir():
        raise CurveSetupError(f"CURVE clients directory {clients_dir} does not exist")
    authenticator = ThreadAuthenticator(context)
    authenticator.start()
    authenticator.configure_curve(domain="*", location=str(clients_dir))
    socket.curve_secretkey = secret
    socket.curve_publickey = public
    socket.curve_server = True
    return authenticator

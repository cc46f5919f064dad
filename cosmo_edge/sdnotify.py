"""systemd's notify protocol (sd_notify(3)) without libsystemd: READY, STATUS, WATCHDOG, EXTEND_TIMEOUT.

systemd passes ``$NOTIFY_SOCKET`` to a ``Type=notify`` service: the path of an ``AF_UNIX`` datagram
socket, or an abstract-namespace name written with a leading ``@`` (sent as a leading NUL byte).
Each message is one datagram of ``KEY=VALUE`` lines. ``$WATCHDOG_USEC`` (from ``WatchdogSec=``) is
the watchdog timeout and ``$WATCHDOG_PID``, when set, the only process it applies to.

Behaviour, chosen for a daemon that must never fail because of its supervisor:

- no ``$NOTIFY_SOCKET`` (run by hand, in tests, in a container): every call is a no-op that returns
  False; nothing is logged above DEBUG;
- a send that fails (socket gone, full buffer) is counted in ``errors``, logged once as a warning
  and then at DEBUG, and never raised;
- ``NotifyAccess=main`` accepts messages from the main process only, so a notifier refuses to send
  from another process (a forked worker that inherited it) instead of sending messages systemd
  would drop; ``from_environment(unset=True)`` also removes the variables so that child processes
  do not see them (what ``sd_notify(unset_environment=1)`` does);
- a ``STATUS=`` text is one line: newlines are replaced by spaces;
- ``extending_timeout`` keeps a long start-up step (a TensorRT engine build) alive with repeated
  ``EXTEND_TIMEOUT_USEC=``, so ``TimeoutStartSec=`` only cuts off a step that stopped progressing.
"""

import contextlib
import logging
import os
import socket
import threading
from typing import Iterator, Mapping, Optional

logger = logging.getLogger(__name__)

ENV_SOCKET = "NOTIFY_SOCKET"
ENV_WATCHDOG_USEC = "WATCHDOG_USEC"
ENV_WATCHDOG_PID = "WATCHDOG_PID"
MAX_STATUS_CHARS = 200  # systemctl status shows one line; longer texts are cut


def socket_address(value: str) -> str:
    """The ``sendto`` address of a ``$NOTIFY_SOCKET`` value (``@name`` -> abstract ``\\0name``).

    Raises:
        ValueError: the value is empty or neither an absolute path nor an ``@`` name.
    """
    if value.startswith("@") and len(value) > 1:
        return "\0" + value[1:]
    if value.startswith("/"):
        return value
    raise ValueError(f"{ENV_SOCKET}={value!r} is neither an absolute path nor an @abstract name")


def watchdog_timeout_s(env: Optional[Mapping[str, str]] = None, pid: Optional[int] = None) -> Optional[float]:
    """The watchdog timeout in seconds that applies to this process, or None when there is none.

    None when ``$WATCHDOG_USEC`` is unset, not a positive integer, or ``$WATCHDOG_PID`` names
    another process (sd_watchdog_enabled(3)).
    """
    env = os.environ if env is None else env
    pid = os.getpid() if pid is None else pid
    raw_usec = env.get(ENV_WATCHDOG_USEC)
    if not raw_usec:
        return None
    try:
        usec = int(raw_usec)
    except ValueError:
        logger.warning("ignoring %s=%r: not an integer", ENV_WATCHDOG_USEC, raw_usec)
        return None
    if usec <= 0:
        return None
    raw_pid = env.get(ENV_WATCHDOG_PID)
    if raw_pid:
        try:
            if int(raw_pid) != pid:
                return None
        except ValueError:
            logger.warning("ignoring %s=%r: not an integer", ENV_WATCHDOG_PID, raw_pid)
            return None
    return usec / 1e6


def one_line(text: str, max_chars: int = MAX_STATUS_CHARS) -> str:
    """``text`` without line breaks, cut to ``max_chars`` characters."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= max_chars else flat[: max_chars - 3] + "..."


class Notifier:
    """Sends notify messages to one socket; thread-safe; every method returns True when sent.

    Args:
        address: the ``$NOTIFY_SOCKET`` value (path or ``@name``); None makes a no-op notifier.
        pid: the process allowed to send (default: the constructing process).

    Attributes:
        sent, errors: datagrams sent and sends that failed.
    """

    def __init__(self, address: Optional[str], pid: Optional[int] = None) -> None:
        self.address = address
        self._target = socket_address(address) if address else None
        self._pid = os.getpid() if pid is None else pid
        self._lock = threading.Lock()
        self._sock: Optional[socket.socket] = None
        self._warned = False
        self.sent = 0
        self.errors = 0

    @classmethod
    def from_environment(cls, unset: bool = False) -> "Notifier":
        """A notifier for ``$NOTIFY_SOCKET`` (no-op without it); ``unset`` hides the variables from children.

        A malformed ``$NOTIFY_SOCKET`` is logged and gives a no-op notifier.
        """
        value = os.environ.get(ENV_SOCKET) or None
        if unset:
            for name in (ENV_SOCKET, ENV_WATCHDOG_USEC, ENV_WATCHDOG_PID):
                os.environ.pop(name, None)
        try:
            return cls(value)
        except ValueError as exc:
            logger.warning("not notifying systemd: %s", exc)
            return cls(None)

    @property
    def enabled(self) -> bool:
        """True when there is a socket to send to."""
        return self._target is not None

    def notify(self, message: str) -> bool:
        """Send one raw message (``KEY=VALUE`` lines); False when disabled, in another process or failed."""
        if self._target is None:
            return False
        if os.getpid() != self._pid:
            logger.debug("not notifying from pid %d (main pid %d): %r", os.getpid(), self._pid, message)
            return False
        data = message.encode("utf-8")
        with self._lock:
            try:
                if self._sock is None:
                    self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
                    self._sock.setblocking(False)  # a stuck systemd must not stall the caller
                self._sock.sendto(data, self._target)
            except OSError as exc:
                self.errors += 1
                self._close_socket()
                log = logger.debug if self._warned else logger.warning
                self._warned = True
                log("notify %r to %s failed: %s", message.split("=", 1)[0], self.address, exc)
                return False
            self.sent += 1
        return True

    def ready(self, status: Optional[str] = None) -> bool:
        """``READY=1`` (plus ``STATUS=``): start-up finished; systemd starts the watchdog now."""
        lines = ["READY=1"]
        if status is not None:
            lines.append("STATUS=" + one_line(status))
        return self.notify("\n".join(lines))

    def status(self, text: str) -> bool:
        """``STATUS=``: the one-line state ``systemctl status`` shows."""
        return self.notify("STATUS=" + one_line(text))

    def watchdog(self) -> bool:
        """``WATCHDOG=1``: keep-alive ping; send only when the pipeline really progressed."""
        return self.notify("WATCHDOG=1")

    def extend_timeout(self, seconds: float) -> bool:
        """``EXTEND_TIMEOUT_USEC=``: the current start/stop step needs ``seconds`` more (systemd >= 236)."""
        usec = max(1, int(round(seconds * 1e6)))
        return self.notify(f"EXTEND_TIMEOUT_USEC={usec}")

    def stopping(self, status: Optional[str] = None) -> bool:
        """``STOPPING=1`` (plus ``STATUS=``): shutdown has begun."""
        lines = ["STOPPING=1"]
        if status is not None:
            lines.append("STATUS=" + one_line(status))
        return self.notify("\n".join(lines))

    def close(self) -> None:
        """Close the socket (a later call opens a new one)."""
        with self._lock:
            self._close_socket()

    def _close_socket(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


@contextlib.contextmanager
def extending_timeout(
    notifier: Notifier, step_s: float = 30.0, period_s: Optional[float] = None
) -> Iterator[None]:
    """While the block runs, send ``EXTEND_TIMEOUT_USEC=step_s`` every ``period_s`` (default step / 3).

    Each message asks systemd for ``step_s`` more seconds from now (systemd >= 236; older versions
    ignore it), so a block that hangs is still stopped ``step_s`` after its last extension. Nothing
    is sent (and no thread started) when the notifier is disabled.
    """
    if step_s <= 0:
        raise ValueError(f"step_s must be > 0 s, got {step_s}")
    period_s = step_s / 3.0 if period_s is None else period_s
    if not notifier.enabled:
        yield
        return
    done = threading.Event()

    def keep_extending() -> None:
        notifier.extend_timeout(step_s)
        while not done.wait(period_s):
            notifier.extend_timeout(step_s)

    thread = threading.Thread(target=keep_extending, name="sd-extend-timeout", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join(period_s + 1.0)

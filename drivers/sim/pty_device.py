"""A simulated serial device: the master end of a pty, published under a stable symlink.

The driver opens the symlink with pyserial exactly as it would open ``/dev/ttyUSB0`` or a
``/dev/serial/by-id`` link. ``unplug()`` closes the pty (the driver's reads fail, the link
vanishes) and ``plug()`` creates a new pty and points the link at it, as udev does when a USB
adapter comes back. Writes never block: bytes that do not fit in the pty's buffer (nobody is
reading) are dropped and counted, as on a UART with no listener.
"""

import errno
import logging
import os
import threading
import tty
from typing import Optional

logger = logging.getLogger(__name__)


class PtyDevice:
    """One pty pair behind ``link_path``.

    Attributes:
        link_path: the stable path drivers open.
        bytes_written, bytes_dropped: totals over the device's life.
    """

    def __init__(self, link_path: str) -> None:
        self.link_path = link_path
        self._lock = threading.Lock()
        self._master: Optional[int] = None
        self._slave: Optional[int] = None
        self.tty_path: Optional[str] = None
        self.bytes_written = 0
        self.bytes_dropped = 0

    @property
    def plugged(self) -> bool:
        """True while the pty exists."""
        return self._master is not None

    def plug(self) -> None:
        """Create the pty (raw mode, non-blocking master) and point ``link_path`` at its slave."""
        with self._lock:
            if self._master is not None:
                return
            master, slave = os.openpty()
            tty.setraw(slave)  # no echo or line editing before the driver configures the port
            os.set_blocking(master, False)
            self._master, self._slave = master, slave
            self.tty_path = os.ttyname(slave)
            tmp = f"{self.link_path}.tmp{os.getpid()}"
            if os.path.lexists(tmp):
                os.unlink(tmp)
            os.symlink(self.tty_path, tmp)
            os.replace(tmp, self.link_path)
        logger.debug("pty %s -> %s plugged", self.link_path, self.tty_path)

    def unplug(self) -> None:
        """Remove the link and close both ends: the driver sees the device vanish."""
        with self._lock:
            if os.path.lexists(self.link_path):
                os.unlink(self.link_path)
            for fd in (self._master, self._slave):
                if fd is not None:
                    os.close(fd)
            self._master = self._slave = None
        logger.debug("pty %s unplugged", self.link_path)

    def write(self, data: bytes) -> int:
        """Write without blocking; return the bytes accepted (the rest is dropped and counted)."""
        with self._lock:
            if self._master is None:
                self.bytes_dropped += len(data)
                return 0
            try:
                written = os.write(self._master, data)
            except BlockingIOError:
                written = 0
            except OSError as exc:
                if exc.errno != errno.EIO:
                    raise
                written = 0
        self.bytes_written += written
        self.bytes_dropped += len(data) - written
        return written

    def read(self, max_bytes: int = 4096) -> bytes:
        """What the driver wrote to the device (e.g. CLI commands); empty when nothing is waiting."""
        with self._lock:
            if self._master is None:
                return b""
            try:
                return os.read(self._master, max_bytes)
            except BlockingIOError:
                return b""
            except OSError as exc:
                if exc.errno != errno.EIO:
                    raise
                return b""

    def fileno(self) -> Optional[int]:
        """The master's file descriptor (for ``select``), ``None`` while unplugged."""
        return self._master

    def close(self) -> None:
        """Unplug for good."""
        self.unplug()

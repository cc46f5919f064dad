"""A serial port that survives the device going away: pyserial open, read, reconnect with backoff.

USB-serial adapters vanish when unplugged (the ``/dev`` path disappears, reads fail with
``OSError``/``SerialException``); a pty's slave fails the same way when its master closes. The
link closes the port, then retries the path with exponential backoff, and calls ``on_connect``
after every (re)open so the driver can drop half-parsed bytes and resynchronise.

Stale input is flushed on every open: bytes that queued while nobody read have no usable arrival
time. Reads return each chunk with ``time.monotonic_ns()`` taken right after it arrived.
"""

import logging
import os
import select
import time
from typing import Any, Callable, Optional, Tuple

import serial

from drivers.base import DriverError

logger = logging.getLogger(__name__)

# Longest single read; a 921600-baud port delivers about 92 bytes per millisecond.
MAX_CHUNK_BYTES = 65536
# How often an idle link checks that its device path still exists.
PATH_CHECK_PERIOD_S = 0.5
# Fallback poll for port types without a file descriptor (pyserial's ``loop://``).
POLL_S = 0.02


class SerialLink:
    """One serial port with reconnect-and-backoff.

    Args:
        port: device path (``/dev/ttyUSB0``, a ``/dev/serial/by-id`` link, a pty) or a pyserial URL.
        baud: line rate in bit/s.
        backoff_initial_s: first wait after a failure; doubles on each failed attempt.
        backoff_max_s: the longest wait between attempts.
        on_connect: called with ``reopened`` (False on the first open) after each successful open;
            an exception from it counts as a failed open.
        serial_factory: builds the pyserial object (tests may pass ``serial.serial_for_url``).
    """

    def __init__(
        self,
        port: str,
        baud: int,
        backoff_initial_s: float = 0.1,
        backoff_max_s: float = 5.0,
        on_connect: Optional[Callable[[bool], None]] = None,
        serial_factory: Callable[..., Any] = serial.serial_for_url,
    ) -> None:
        self.port = port
        self.baud = int(baud)
        self.backoff_initial_s = float(backoff_initial_s)
        self.backoff_max_s = float(backoff_max_s)
        self.on_connect = on_connect
        self._factory = serial_factory
        self._serial: Optional[Any] = None
        self._fd: Optional[int] = None
        self._backoff_s = self.backoff_initial_s
        self._next_attempt_s = 0.0
        self._last_path_check_s = 0.0
        self._ever_opened = False
        self._closed = True
        self.reconnects = 0
        self.disconnects = 0
        self.open_failures = 0

    @property
    def connected(self) -> bool:
        """True while a port is open."""
        return self._serial is not None

    def open(self) -> None:
        """Open the port for the first time; raise ``DriverError`` if that fails."""
        self._closed = False
        try:
            self._connect()
        except (serial.SerialException, OSError, DriverError) as exc:
            self._closed = True
            raise DriverError(f"cannot open serial port {self.port} at {self.baud} baud: {exc}") from exc

    def _connect(self) -> None:
        """Open the port, flush stale input and run ``on_connect``; on failure leave it closed."""
        port = self._factory(self.port, baudrate=self.baud, timeout=POLL_S, write_timeout=1.0)
        try:
            fd = port.fileno()
        except (AttributeError, NotImplementedError, serial.SerialException):
            fd = None  # e.g. pyserial's loop:// has no descriptor: poll with a short timeout instead
            logger.debug("%s has no file descriptor; reads poll every %.0f ms", self.port, POLL_S * 1e3)
        if fd is not None:
            port.timeout = 0  # reads never block; waiting happens in select() below
        port.reset_input_buffer()
        self._serial, self._fd = port, fd
        try:
            if self.on_connect is not None:
                self.on_connect(self._ever_opened)
        except BaseException:
            self._drop_port()
            raise
        if self._ever_opened:
            self.reconnects += 1
            logger.info("serial port %s reopened (reconnect %d)", self.port, self.reconnects)
        self._ever_opened = True
        self._backoff_s = self.backoff_initial_s

    def _drop_port(self) -> None:
        """Close the pyserial object, ignoring errors from an already-dead device."""
        port, self._serial, self._fd = self._serial, None, None
        if port is None:
            return
        try:
            port.close()
        except (serial.SerialException, OSError) as exc:
            logger.debug("closing %s after failure: %s", self.port, exc)

    def _lost(self, reason: str) -> None:
        """Record a lost connection and schedule the first retry."""
        self.disconnects += 1
        logger.warning("serial port %s lost (%s); retrying with backoff", self.port, reason)
        self._drop_port()
        self._next_attempt_s = time.monotonic() + self._backoff_s

    def _try_reconnect(self) -> None:
        """One reconnect attempt; on failure double the backoff."""
        try:
            self._connect()
        except (serial.SerialException, OSError, DriverError) as exc:
            self.open_failures += 1
            logger.debug("reopen of %s failed: %s", self.port, exc)
            self._next_attempt_s = time.monotonic() + self._backoff_s
            self._backoff_s = min(self._backoff_s * 2.0, self.backoff_max_s)

    def read(self, timeout_s: float) -> Tuple[bytes, int]:
        """Wait up to ``timeout_s`` for bytes; return ``(data, t_monotonic_ns)``.

        ``data`` is empty on timeout or while the device is away (the link keeps retrying).
        """
        deadline_s = time.monotonic() + max(0.0, timeout_s)
        while not self._closed:
            now_s = time.monotonic()
            if self._serial is None:
                if now_s >= self._next_attempt_s:
                    self._try_reconnect()
                    continue
                if now_s >= deadline_s:
                    break
                time.sleep(min(self._next_attempt_s, deadline_s) - now_s)
                continue
            try:
                data = self._read_available(max(0.0, deadline_s - now_s))
            except (serial.SerialException, OSError) as exc:
                self._lost(str(exc))
                continue
            if data:
                return data, time.monotonic_ns()
            if self._path_vanished():
                self._lost("device path vanished")
                continue
            if time.monotonic() >= deadline_s:
                break
        return b"", time.monotonic_ns()

    def _read_available(self, wait_s: float) -> bytes:
        """Return what the port holds, waiting at most ``wait_s`` for the first byte."""
        port = self._serial
        if self._fd is not None:
            ready, _, _ = select.select([self._fd], [], [], wait_s)
            if not ready:
                return b""
            return port.read(min(max(1, port.in_waiting), MAX_CHUNK_BYTES))
        waiting = port.in_waiting
        return port.read(min(max(1, waiting), MAX_CHUNK_BYTES))

    def _path_vanished(self) -> bool:
        """Check (at most every ``PATH_CHECK_PERIOD_S``) whether a device path disappeared."""
        if "://" in self.port:
            return False
        now_s = time.monotonic()
        if now_s - self._last_path_check_s < PATH_CHECK_PERIOD_S:
            return False
        self._last_path_check_s = now_s
        return not os.path.exists(self.port)

    def write(self, data: bytes) -> None:
        """Write all of ``data``; a failure marks the link lost and raises ``DriverError``."""
        if self._serial is None:
            raise DriverError(f"serial port {self.port} is not connected")
        try:
            self._serial.write(data)
            self._serial.flush()
        except (serial.SerialException, OSError) as exc:
            self._lost(str(exc))
            raise DriverError(f"write to {self.port} failed: {exc}") from exc

    def reset_input(self) -> None:
        """Discard bytes queued on the port (before a radar's ``sensorStart``)."""
        if self._serial is not None:
            self._serial.reset_input_buffer()

    def close(self) -> None:
        """Close the port and stop reconnecting."""
        self._closed = True
        self._drop_port()

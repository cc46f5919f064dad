"""Log lines for the systemd journal: detect ``$JOURNAL_STREAM``, prefix each line with its priority.

Under systemd, stdout and stderr of the service are a stream socket to journald, which stamps
every line with its own time, unit and PID, so our lines carry none of that. journald reads a
leading ``<N>`` (syslog priority, ``SyslogLevelPrefix=`` defaults to yes) as the line's priority,
so ``journalctl -u cosmo-edge -p warning`` works. The thread name is in each line: the daemon
names its threads after the stream or stage (``imu-reader``, ``inference``, ``publisher``).

systemd.exec(5): ``$JOURNAL_STREAM`` is ``DEVICE:INODE`` of the journal connection; compare it
with the file descriptor's ``fstat`` because the variable may be inherited by a process whose
output was redirected elsewhere.
"""

import logging
import os
from typing import IO, Mapping, Optional

logger = logging.getLogger(__name__)

ENV_JOURNAL_STREAM = "JOURNAL_STREAM"
JOURNAL_FORMAT = "%(levelname)s [%(threadName)s] %(name)s: %(message)s"
TERMINAL_FORMAT = "%(asctime)s %(levelname)s [%(threadName)s] %(name)s: %(message)s"

# logging level -> syslog priority (sd-daemon(3): <3> error, <4> warning, <6> info, <7> debug)
_PRIORITIES = ((logging.CRITICAL, 2), (logging.ERROR, 3), (logging.WARNING, 4), (logging.INFO, 6))


def syslog_priority(levelno: int) -> int:
    """Syslog priority of a logging level (CRITICAL 2, ERROR 3, WARNING 4, INFO 6, below 7)."""
    for threshold, priority in _PRIORITIES:
        if levelno >= threshold:
            return priority
    return 7


def is_journal_stream(stream: IO[str], env: Optional[Mapping[str, str]] = None) -> bool:
    """True when ``stream``'s file descriptor is the journal connection named in ``$JOURNAL_STREAM``."""
    env = os.environ if env is None else env
    value = env.get(ENV_JOURNAL_STREAM, "")
    device, sep, inode = value.partition(":")
    if not sep or not device.isdigit() or not inode.isdigit():
        return False
    try:
        status = os.fstat(stream.fileno())
    except (OSError, ValueError, AttributeError):  # closed, or not backed by a descriptor (pytest capture)
        return False
    return status.st_dev == int(device) and status.st_ino == int(inode)


class JournalFormatter(logging.Formatter):
    """``<priority>LEVEL [thread] logger: message``; continuation lines of a traceback get the prefix too."""

    def __init__(self) -> None:
        super().__init__(JOURNAL_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        """The record as journald lines, each prefixed with the record's priority."""
        prefix = f"<{syslog_priority(record.levelno)}>"
        return "\n".join(prefix + line for line in super().format(record).splitlines() or [""])

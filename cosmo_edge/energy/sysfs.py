"""Small helpers to read sysfs attribute files, cheaply and repeatedly.

A sampler reads the same few attribute files 50-100 times a second, so ``SysfsValue`` keeps the file
descriptor open and re-reads it with ``os.pread(fd, n, 0)``, which makes the kernel call the
attribute's ``show()`` again (no reopen, no seek). ``sys_path`` resolves absolute ``/sys/...`` paths
under a configurable root, so tests run the same code on a fixture tree.
"""

import logging
import os
from pathlib import Path
from typing import Optional

logger = logging.getLogger(__name__)

_READ_BYTES = 128


def sys_path(root: str, *parts: str) -> Path:
    """``root`` joined with ``parts`` ("/" and ("sys", "class") -> /sys/class)."""
    return Path(root).joinpath(*parts)


def read_text(path: Path) -> str:
    """The stripped text of a small file; ``OSError`` propagates (missing, permission denied)."""
    with open(path, encoding="ascii", errors="replace") as handle:
        return handle.read().strip()


def read_int(path: Path) -> int:
    """The first whitespace-separated token of ``path`` as an int (``"32760 ma"`` -> 32760)."""
    text = read_text(path)
    try:
        return int(text.split()[0])
    except (IndexError, ValueError):
        raise ValueError(f"{path}: expected an integer, read {text!r}") from None


class SysfsValue:
    """An open attribute file whose integer value is re-read on every ``read()``."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._fd: Optional[int] = os.open(str(self.path), os.O_RDONLY)

    def read(self) -> int:
        """The current integer value (first token of the file)."""
        if self._fd is None:
            raise OSError(f"{self.path}: already closed")
        raw = os.pread(self._fd, _READ_BYTES, 0)
        try:
            return int(raw.split()[0])
        except (IndexError, ValueError):
            raise ValueError(f"{self.path}: expected an integer, read {raw!r}") from None

    def close(self) -> None:
        """Close the file descriptor (idempotent)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

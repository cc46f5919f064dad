"""Disk full during label writes, against a running daemon (a real ``cosmo-edge run`` process).

Two ways to fill the disk, neither needing root:

- ``tmpfs``: the daemon runs in its own user and mount namespace (``unshare -rm``) with a 16 MiB
  tmpfs mounted on its state directory; the test reaches that filesystem through
  ``/proc/<pid>/root`` and fills it with a filler file until ``ENOSPC``; deleting the filler is
  "space returns". This is a genuinely full filesystem. Skipped where unprivileged user
  namespaces are not allowed. The store is checked on a copy of its files (see ``readable``).
- ``rlimit``: the daemon's soft ``RLIMIT_FSIZE`` is lowered to 0 from outside with ``prlimit(2)``
  (same user, hard limit untouched), so every write to a regular file fails with ``EFBIG`` (Python
  ignores ``SIGXFSZ``) where a full filesystem fails with ``ENOSPC``; raising it back is "space
  returns". Works on any Linux.

The daemon's log reaches the test through a pipe, which neither covers, so its errors are seen.
"""

import errno
import os
import resource
import shutil
import sqlite3
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from fault_support import DaemonRun, stored_message_ids, wait_for, write_config

from cosmo_edge.labels import LabelRequest, send_label, store_path

pytest.importorskip("zmq")
pytest.importorskip("pyrealsense2")

TMPFS_SIZE = "16m"
MOUNT = 'mount -t tmpfs -o size={size} tmpfs "$0" && exec "$@"'


def _userns_tmpfs_works(tmp_path: Path) -> bool:
    if shutil.which("unshare") is None:
        return False
    target = tmp_path / "probe"
    target.mkdir()
    probe = ["unshare", "-rm", "sh", "-c", MOUNT.format(size="1m"), str(target), "true"]
    return subprocess.run(probe, capture_output=True, timeout=20).returncode == 0


def _label(daemon, labels, count, gap_s=0.05):
    """Send ``count`` labels for recent windows; (acked ids, error codes)."""
    acked, errors = [], []
    for i in range(count):
        window = daemon.windows()[-1 - (i % 4)]
        wid = int(window["window_id"])
        request = LabelRequest(uuid.uuid4().hex, labels[wid % len(labels)], window_ids=(wid,))
        reply = send_label(request, daemon.label_endpoint, timeout_s=10.0, attempts=1)
        if reply["ok"]:
            acked.append(request.message_id)
        else:
            errors.append(reply["error"])
        time.sleep(gap_s)
    return acked, errors


def readable(state: Path, copy_dir: Path) -> Path:
    """A state directory SQLite can open: ``state`` itself, or a copy of a store behind /proc/<pid>/root.

    SQLite resolves symlinks in a database path, and ``/proc/<pid>/root`` is one (to "/"), so it
    would open the host's path instead of the daemon's; the database and its WAL are copied out
    (no label is being written meanwhile) and the copy is checked.
    """
    if not str(state).startswith("/proc/"):
        return state
    copy_dir.mkdir()
    for suffix in ("", "-wal"):
        source = Path(str(store_path(state)) + suffix)
        if source.exists():
            shutil.copyfile(str(source), str(copy_dir / (source.name)))
    return copy_dir


class TmpfsFull:
    """Fill / free the daemon's private tmpfs through ``/proc/<pid>/root``."""

    def __init__(self, daemon: DaemonRun, state: Path) -> None:
        self.filler = Path(f"/proc/{daemon.proc.pid}/root") / str(state).lstrip("/") / "filler"

    def fill(self) -> None:
        """Write zeros until the filesystem refuses even 512 bytes (ENOSPC)."""
        descriptor = os.open(str(self.filler), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        size = 1 << 20
        try:
            while size >= 512:
                try:
                    os.write(descriptor, b"\0" * size)
                except OSError as exc:
                    assert exc.errno == errno.ENOSPC, exc
                    size //= 2
        finally:
            os.close(descriptor)

    def free(self) -> None:
        self.filler.unlink()


class RlimitFull:
    """Lower / restore the daemon's soft RLIMIT_FSIZE."""

    def __init__(self, daemon: DaemonRun, state: Path) -> None:
        self.pid = daemon.proc.pid
        self.saved = resource.prlimit(self.pid, resource.RLIMIT_FSIZE)

    def fill(self) -> None:
        resource.prlimit(self.pid, resource.RLIMIT_FSIZE, (0, self.saved[1]))

    def free(self) -> None:
        resource.prlimit(self.pid, resource.RLIMIT_FSIZE, self.saved)


@pytest.mark.parametrize("how", ["tmpfs", "rlimit"])
def test_disk_full_during_label_writes_refuses_and_recovers(tmp_path, how):
    """Expected: while the disk is full, every label gets an error reply (``storage``), never an ack;
    the daemon keeps publishing windows; the store passes ``PRAGMA integrity_check`` and holds every
    label acknowledged before; once space returns, new labels are acknowledged and stored again."""
    state = tmp_path / "state"
    prefix = ()
    if how == "tmpfs":
        if not _userns_tmpfs_works(tmp_path):
            pytest.skip("unprivileged user namespaces with a tmpfs mount are not available here")
        state.mkdir()
        prefix = ("unshare", "-rm", "sh", "-c", MOUNT.format(size=TMPFS_SIZE), str(state))
    elif not hasattr(resource, "prlimit"):
        pytest.skip("needs prlimit(2) (Linux)")
    config = write_config(tmp_path, labels=True, label_buffer_s=10.0)
    daemon = DaemonRun(config, tmp_path / "daemon.log", prefix=prefix)
    seen_state = Path(f"/proc/{daemon.proc.pid}/root") / str(state).lstrip("/") if prefix else state
    try:
        assert daemon.wait_windows(6, 60.0), daemon.log()[-3000:]
        labels = daemon.statuses()[-1]["labels"]
        before, errors = _label(daemon, labels, 20)
        assert len(before) == 20 and not errors

        disk = (TmpfsFull if how == "tmpfs" else RlimitFull)(daemon, state)
        disk.fill()
        try:
            full_started = time.monotonic_ns()
            during, errors = _label(daemon, labels, 15, gap_s=0.2)
            assert daemon.proc.poll() is None, daemon.log()[-3000:]
            assert not during, f"acknowledged while the disk was full: {during}"
            assert errors and set(errors) == {"storage"}, errors
            assert daemon.wait_windows(4, 10.0, since_ns=full_started), daemon.log()[-3000:]
            assert "not stored" in daemon.log()
        finally:
            disk.free()

        with sqlite3.connect(str(store_path(readable(seen_state, tmp_path / "copy1")))) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert set(before) <= stored_message_ids(readable(seen_state, tmp_path / "copy2"))

        after, errors = [], []
        assert wait_for(lambda: bool(_label(daemon, labels, 1)[0]), 15.0, period_s=0.5), daemon.log()[-3000:]
        after, errors = _label(daemon, labels, 20)
        assert len(after) == 20 and not errors, errors
        assert set(before) | set(after) <= stored_message_ids(readable(seen_state, tmp_path / "copy3"))
        assert daemon.terminate() == 0, daemon.log()[-3000:]
    finally:
        daemon.close()
    if how == "rlimit":  # (the tmpfs went with the daemon's namespace)
        assert set(before) | set(after) <= stored_message_ids(state)  # also after a clean stop

"""Journal-friendly logging: $JOURNAL_STREAM detection and <priority> prefixes, via the real CLI setup."""

import logging
import os
import subprocess
import sys

from cosmo_edge import journald

SCRIPT = """
import logging, threading
from cosmo_edge.cli import configure_logging
configure_logging("INFO")
log = logging.getLogger("drivers.imu_serial")
log.info("opened %s", "/dev/cosmo-edge/imu")
log.debug("not shown")
t = threading.Thread(target=lambda: log.warning("frame lost"), name="imu-reader")
t.start(); t.join()
try:
    1 / 0
except ZeroDivisionError:
    log.exception("boom")
"""


def _run(tmp_path, journal: str) -> tuple:
    """Run SCRIPT with stdout and stderr in files; ``journal`` is which one JOURNAL_STREAM names."""
    out_path, err_path = tmp_path / "out.txt", tmp_path / "err.txt"
    with open(out_path, "w") as out, open(err_path, "w") as err:
        env = dict(os.environ)
        env.pop("JOURNAL_STREAM", None)
        target = {"stdout": out, "stderr": err}.get(journal)
        if target is not None:
            status = os.fstat(target.fileno())
            env["JOURNAL_STREAM"] = f"{status.st_dev}:{status.st_ino}"
        elif journal == "stale":
            env["JOURNAL_STREAM"] = "1:2"  # inherited, but our output was redirected elsewhere
        subprocess.run(
            [sys.executable, "-c", SCRIPT], stdout=out, stderr=err, env=env, check=True, timeout=60
        )
    return out_path.read_text(), err_path.read_text()


def test_under_journald_lines_carry_priority_thread_and_no_timestamp(tmp_path) -> None:
    out, err = _run(tmp_path, "stdout")
    assert err == ""
    lines = out.splitlines()
    assert lines[0] == "<6>INFO [MainThread] drivers.imu_serial: opened /dev/cosmo-edge/imu"
    assert lines[1] == "<4>WARNING [imu-reader] drivers.imu_serial: frame lost"
    assert lines[2] == "<3>ERROR [MainThread] drivers.imu_serial: boom"
    assert lines[-1] == "<3>ZeroDivisionError: division by zero"
    assert all(line.startswith("<3>") for line in lines[2:])  # the traceback keeps its priority


def test_journal_on_stderr_only(tmp_path) -> None:
    out, err = _run(tmp_path, "stderr")
    assert out == ""
    assert err.splitlines()[0] == "<6>INFO [MainThread] drivers.imu_serial: opened /dev/cosmo-edge/imu"


def test_in_a_terminal_or_with_a_stale_variable_lines_go_to_stderr_with_a_timestamp(tmp_path) -> None:
    for journal in ("none", "stale"):
        out, err = _run(tmp_path, journal)
        assert out == ""
        first = err.splitlines()[0]
        assert not first.startswith("<")
        assert first[:4].isdigit() and first.endswith(
            "INFO [MainThread] drivers.imu_serial: opened /dev/cosmo-edge/imu"
        )


def test_is_journal_stream_compares_device_and_inode(tmp_path) -> None:
    with open(tmp_path / "f", "w") as handle:
        status = os.fstat(handle.fileno())
        assert journald.is_journal_stream(handle, {"JOURNAL_STREAM": f"{status.st_dev}:{status.st_ino}"})
        assert not journald.is_journal_stream(
            handle, {"JOURNAL_STREAM": f"{status.st_dev}:{status.st_ino + 1}"}
        )
        for bad in ("", "garbage", "1:", ":2", "a:b"):
            assert not journald.is_journal_stream(handle, {"JOURNAL_STREAM": bad})
    assert not journald.is_journal_stream(handle, {"JOURNAL_STREAM": "1:2"})  # closed file


def test_priorities() -> None:
    assert [journald.syslog_priority(level) for level in (5, 10, 20, 25, 30, 40, 50)] == [7, 7, 6, 6, 4, 3, 2]
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "", (), None)
    assert journald.JournalFormatter().format(record) == "<6>INFO [MainThread] x: "

"""sd_notify client against a real AF_UNIX datagram socket (path and abstract namespace)."""

import os
import socket
import time
import uuid
from typing import Iterator, List

import pytest

from cosmo_edge import sdnotify
from cosmo_edge.sdnotify import Notifier


def _receive_all(sock: socket.socket) -> List[str]:
    """Every datagram waiting on ``sock`` (non-blocking), decoded."""
    messages = []
    while True:
        try:
            messages.append(sock.recv(4096).decode("utf-8"))
        except BlockingIOError:
            return messages


@pytest.fixture()
def notify_socket(tmp_path) -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(tmp_path / "notify.sock"))
    sock.setblocking(False)
    yield sock
    sock.close()


def test_messages_reach_a_path_socket(notify_socket) -> None:
    notifier = Notifier(notify_socket.getsockname())
    assert notifier.ready("sensors 3/3, backend onnxruntime")
    assert notifier.status("running\nsecond line")
    assert notifier.watchdog()
    assert notifier.extend_timeout(90.5)
    assert notifier.stopping("stopping")
    assert _receive_all(notify_socket) == [
        "READY=1\nSTATUS=sensors 3/3, backend onnxruntime",
        "STATUS=running second line",
        "WATCHDOG=1",
        "EXTEND_TIMEOUT_USEC=90500000",
        "STOPPING=1\nSTATUS=stopping",
    ]
    assert notifier.sent == 5 and notifier.errors == 0
    notifier.close()


def test_abstract_namespace_socket(monkeypatch) -> None:
    name = f"cosmo-edge-test-{uuid.uuid4().hex}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    sock.settimeout(2.0)
    try:
        monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)
        notifier = Notifier.from_environment()
        assert notifier.enabled
        assert notifier.watchdog()
        assert sock.recv(4096) == b"WATCHDOG=1"
    finally:
        sock.close()


def test_without_notify_socket_everything_is_a_quiet_no_op(monkeypatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    notifier = Notifier.from_environment()
    assert not notifier.enabled
    assert not notifier.ready() and not notifier.watchdog() and not notifier.status("x")
    assert notifier.errors == 0


def test_unset_hides_the_variables_from_children(monkeypatch, notify_socket) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", notify_socket.getsockname())
    monkeypatch.setenv("WATCHDOG_USEC", "30000000")
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    notifier = Notifier.from_environment(unset=True)
    assert "NOTIFY_SOCKET" not in os.environ and "WATCHDOG_USEC" not in os.environ
    assert notifier.watchdog()
    assert _receive_all(notify_socket) == ["WATCHDOG=1"]


def test_malformed_notify_socket_gives_a_disabled_notifier(monkeypatch) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", "relative/path")
    assert not Notifier.from_environment().enabled
    with pytest.raises(ValueError, match="absolute path"):
        sdnotify.socket_address("relative/path")
    assert sdnotify.socket_address("@x") == "\0x"


def test_a_vanished_socket_is_counted_not_raised_and_recovers(tmp_path, caplog) -> None:
    path = str(tmp_path / "gone.sock")
    notifier = Notifier(path)
    assert not notifier.watchdog()
    assert not notifier.watchdog()
    assert notifier.errors == 2 and notifier.sent == 0
    assert sum("failed" in r.getMessage() and r.levelname == "WARNING" for r in caplog.records) == 1
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(2.0)
    try:
        assert notifier.watchdog()
        assert sock.recv(4096) == b"WATCHDOG=1"
    finally:
        sock.close()


def test_a_forked_child_does_not_send(notify_socket) -> None:
    notifier = Notifier(notify_socket.getsockname())
    pid = os.fork()
    if pid == 0:  # child: NotifyAccess=main would drop its messages, so it must not send them
        os._exit(0 if notifier.watchdog() is False else 1)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    assert _receive_all(notify_socket) == []
    assert notifier.watchdog()
    assert _receive_all(notify_socket) == ["WATCHDOG=1"]


@pytest.mark.parametrize(
    "env, expected",
    [
        ({}, None),
        ({"WATCHDOG_USEC": "30000000"}, 30.0),
        ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "4242"}, 30.0),
        ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}, None),
        ({"WATCHDOG_USEC": "0"}, None),
        ({"WATCHDOG_USEC": "soon"}, None),
        ({"WATCHDOG_USEC": "1000", "WATCHDOG_PID": "x"}, None),
    ],
)
def test_watchdog_timeout_from_environment(env, expected) -> None:
    assert sdnotify.watchdog_timeout_s(env, pid=4242) == expected


def test_extending_timeout_repeats_while_the_block_runs(notify_socket) -> None:
    notifier = Notifier(notify_socket.getsockname())
    with sdnotify.extending_timeout(notifier, step_s=0.3, period_s=0.02):
        deadline = time.monotonic() + 5.0
        while notifier.sent < 3 and time.monotonic() < deadline:
            time.sleep(0.005)
    sent = notifier.sent
    time.sleep(0.1)
    assert notifier.sent == sent >= 3  # nothing after the block
    assert set(_receive_all(notify_socket)) == {"EXTEND_TIMEOUT_USEC=300000"}


def test_extending_timeout_without_systemd_is_a_plain_block() -> None:
    with sdnotify.extending_timeout(Notifier(None), step_s=1.0):
        value = 1
    assert value == 1
    with pytest.raises(ValueError):
        with sdnotify.extending_timeout(Notifier(None), step_s=0):
            pass


def test_status_is_one_bounded_line() -> None:
    assert sdnotify.one_line("a\n b\tc") == "a b c"
    long = sdnotify.one_line("x" * 500)
    assert len(long) == sdnotify.MAX_STATUS_CHARS and long.endswith("...")

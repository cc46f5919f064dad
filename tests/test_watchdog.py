"""Progress-gated watchdog: pings only while every stage moves; a stuck inference loop stops them."""

import socket
import threading
import time
from typing import Callable, Iterator, List

import pytest

from cosmo_edge.sdnotify import Notifier
from cosmo_edge.watchdog import ProgressCounter, Watchdog


def _pings(sock: socket.socket) -> List[bytes]:
    """Every datagram waiting on ``sock`` (non-blocking)."""
    out = []
    while True:
        try:
            out.append(sock.recv(4096))
        except BlockingIOError:
            return out


def _wait_for(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.01)


@pytest.fixture()
def notify_socket(tmp_path) -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(tmp_path / "notify.sock"))
    sock.setblocking(False)
    yield sock
    sock.close()


@pytest.fixture()
def notifier(notify_socket) -> Notifier:
    return Notifier(notify_socket.getsockname())


def test_pings_only_when_every_stage_progressed(notifier, notify_socket) -> None:
    imu, inference = ProgressCounter(), ProgressCounter()
    dog = Watchdog(notifier, interval_s=15.0)
    dog.add_probe("imu-reader", imu)
    dog.add_probe("inference", inference)

    imu.tick()
    inference.tick(3)
    result = dog.check()
    assert result.pinged and result.stalled == [] and _pings(notify_socket) == [b"WATCHDOG=1"]

    imu.tick()  # inference is stuck
    result = dog.check()
    assert not result.pinged and result.stalled == ["inference"]
    assert _pings(notify_socket) == []

    imu.tick()
    inference.tick()
    assert dog.check().pinged
    assert dog.counters == {"checks": 3, "pings": 2, "skipped": 1, "probe_errors": 0}


def test_the_first_reading_is_a_baseline_not_progress(notifier, notify_socket) -> None:
    counter = ProgressCounter()
    counter.tick(100)
    dog = Watchdog(notifier, interval_s=1.0)
    dog.add_probe("inference", counter)
    assert not dog.check().pinged
    counter.tick()
    assert dog.check().pinged


def test_progress_before_a_skipped_check_does_not_count_later(notifier, notify_socket) -> None:
    reader, inference = ProgressCounter(), ProgressCounter()
    dog = Watchdog(notifier, interval_s=1.0)
    dog.add_probe("reader", reader)
    dog.add_probe("inference", inference)
    reader.tick()  # reader moved, inference did not: no ping
    assert dog.check().stalled == ["inference"]
    inference.tick()  # now inference moves but the reader has stopped since the last check
    result = dog.check()
    assert not result.pinged and result.stalled == ["reader"]
    assert _pings(notify_socket) == []


def test_a_failing_probe_withholds_the_ping_and_is_counted(notifier, notify_socket) -> None:
    good = ProgressCounter()

    def broken() -> int:
        raise OSError("driver object gone")

    dog = Watchdog(notifier, interval_s=1.0)
    dog.add_probe("good", good)
    dog.add_probe("broken", broken)
    good.tick()
    result = dog.check()
    assert not result.pinged and result.failed == ["broken"]
    assert dog.counters["probe_errors"] == 2  # baseline reading and this check
    assert _pings(notify_socket) == []


def test_no_stages_means_no_ping_and_on_stall_names_the_stages(notifier, notify_socket) -> None:
    stalls: List[List[str]] = []
    dog = Watchdog(notifier, interval_s=1.0, on_stall=stalls.append)
    assert not dog.check().pinged
    counter = ProgressCounter()
    dog.add_probe("inference", counter)
    dog.check()
    assert stalls == [["(no stages registered)"], ["inference"]]
    with pytest.raises(ValueError, match="already registered"):
        dog.add_probe("inference", counter)
    dog.remove_probe("inference")
    assert dog.stages() == []


def test_interval_is_half_of_watchdog_usec(monkeypatch, notifier) -> None:
    monkeypatch.setenv("WATCHDOG_USEC", "30000000")
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    assert Watchdog(notifier).interval_s == 15.0
    monkeypatch.setenv("WATCHDOG_PID", "1")  # the watchdog is meant for another process
    assert Watchdog(notifier, default_interval_s=7.0).interval_s == 7.0
    with pytest.raises(ValueError):
        Watchdog(notifier, interval_s=0.0)


class _InferenceLoop:
    """A loop thread that ticks its counter until told to hang, then blocks until released."""

    def __init__(self) -> None:
        self.progress = ProgressCounter()
        self.running = threading.Event()
        self.running.set()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="inference", daemon=True)

    def _run(self) -> None:
        while not self.stop.is_set():
            self.running.wait()  # a hung predict(): no iterations while cleared
            self.progress.tick()
            time.sleep(0.005)


def test_a_stuck_inference_loop_stops_the_pings(monkeypatch, notifier, notify_socket) -> None:
    monkeypatch.setenv("WATCHDOG_USEC", "100000")  # 0.1 s: checks every 0.05 s
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    loop = _InferenceLoop()
    reader = ProgressCounter()
    dog = Watchdog(notifier)
    assert dog.interval_s == pytest.approx(0.05)
    dog.add_probe("inference", loop.progress)
    dog.add_probe("reader", lambda: reader.value + int(time.monotonic() * 1000))  # always moving
    loop.thread.start()
    dog.start()
    try:
        _wait_for(lambda: dog.counters["pings"] >= 3)

        loop.running.clear()  # inference hangs
        skipped = dog.counters["skipped"]
        _wait_for(lambda: dog.counters["skipped"] > skipped)
        _pings(notify_socket)  # drop pings sent before the hang was seen
        checks = dog.counters["checks"]
        _wait_for(lambda: dog.counters["checks"] >= checks + 3)
        assert _pings(notify_socket) == []
        assert dog.last_result is not None and dog.last_result.stalled == ["inference"]

        loop.running.set()  # it recovers: pings resume
        _wait_for(lambda: len(_pings(notify_socket)) > 0)
    finally:
        dog.stop()
        loop.stop.set()
        loop.running.set()
        loop.thread.join(2.0)

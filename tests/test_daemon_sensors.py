"""Driver threads: a failing driver is restarted with backoff and never stops the others."""

import threading
import time

import numpy as np

from cosmo_edge.daemon.sensors import SensorThread
from cosmo_edge.ring import Ring
from cosmo_edge.windows import StreamChannel
from drivers.base import DriverError
from drivers.sample import Sample


class FakeDriver:
    """Emits IMU samples every read; raises from ``read`` after ``fail_after`` samples (if set)."""

    counters = {"frames_ok": 0}

    def __init__(self, fail_after=None, fail_open=False):
        self.fail_after, self.fail_open = fail_after, fail_open
        self.sent = 0
        self.closed = False

    def open(self):
        if self.fail_open:
            raise DriverError("port gone")

    def read(self, timeout_s):
        if self.fail_after is not None and self.sent >= self.fail_after:
            raise OSError("device vanished")
        time.sleep(0.002)
        self.sent += 1
        return Sample("imu", None, time.monotonic_ns(), np.zeros(6, np.float32), self.sent)

    def close(self):
        self.closed = True


def _channel():
    return StreamChannel("imu", Ring(1000, (6,), name="imu"))


def _wait(predicate, timeout_s=5.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return False


def test_failing_driver_is_restarted_with_growing_backoff_and_the_other_keeps_reading():
    built = []

    def flaky():
        built.append(time.monotonic())
        return FakeDriver(fail_after=3)

    bad = SensorThread("imu", flaky, _channel(), backoff_initial_s=0.05, backoff_max_s=0.2)
    good = SensorThread("good", lambda: FakeDriver(), _channel())
    bad.start()
    good.start()
    try:
        assert _wait(lambda: bad.restarts >= 4)
        assert bad.failures >= 4 and "device vanished" in bad.last_error
        gaps = np.diff(built[:5])
        assert gaps[2] > gaps[0] * 1.5  # the delay doubled
        assert all(g < 0.5 for g in gaps)  # and stays under the cap (+ slack)
        before = good.samples
        assert _wait(lambda: good.samples > before + 10)
        assert good.failures == 0 and good.state == "open"
    finally:
        bad.stop()
        good.stop()
        bad.join(2.0)
        good.join(2.0)
    assert not bad.is_alive() and not good.is_alive()
    assert bad.state == good.state == "stopped"


def test_open_failure_is_retried_and_counted_and_every_driver_is_closed():
    drivers = []

    def factory():
        drivers.append(FakeDriver(fail_open=len(drivers) < 2))
        return drivers[-1]

    thread = SensorThread("imu", factory, _channel(), backoff_initial_s=0.01)
    thread.start()
    try:
        assert thread.opened.wait(3.0)
        assert _wait(lambda: thread.samples > 5)
    finally:
        thread.stop()
        thread.join(2.0)
    assert thread.failures == 2 and thread.restarts == 2
    assert all(d.closed for d in drivers)
    counters = thread.counters()
    assert counters["state"] == "stopped" and counters["ring"]["written"] == thread.samples


def test_stop_ends_a_thread_stuck_in_backoff_promptly():
    thread = SensorThread("imu", lambda: FakeDriver(fail_open=True), _channel(), backoff_initial_s=30.0)
    thread.start()
    assert _wait(lambda: thread.state == "backoff")
    started = time.monotonic()
    thread.stop()
    thread.join(2.0)
    assert not thread.is_alive() and time.monotonic() - started < 1.0


def test_factory_that_raises_does_not_escape_the_thread():
    errors = []
    threading.excepthook, previous = (lambda args: errors.append(args)), threading.excepthook
    try:
        thread = SensorThread("imu", lambda: 1 / 0, _channel(), backoff_initial_s=0.01)
        thread.start()
        assert _wait(lambda: thread.failures >= 2)
        thread.stop()
        thread.join(2.0)
    finally:
        threading.excepthook = previous
    assert not errors and "ZeroDivisionError" in thread.last_error

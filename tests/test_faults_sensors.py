"""Sensor faults against a running daemon: a real ``cosmo-edge run`` process reading an IMU and a TI
radar that this test owns (ptys behind symlinks, as udev names USB adapters) and depth from the
built-in simulator. Every fault is observed through public surfaces only: the ZeroMQ stream,
``/readyz`` and ``/metrics`` on the health port, and the log.

One daemon serves the whole module (start-up costs about 10 s); each test first waits until windows
with every modality flow again, so a test that leaves the daemon broken fails the next one too.
"""

import math
import time

import numpy as np
import pytest
from fault_support import DaemonRun, FakeImu, FakeRadar, wait_for, write_config

pytest.importorskip("zmq")
pytest.importorskip("pyrealsense2")

STALE_S = 3.0  # window.stale_s of this daemon: a silent stream is stale after this long (host s)
RECOVER_S = 30.0  # longest wait for a modality to come back after a fault ends (s)


@pytest.fixture(scope="module")
def rig(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sensor-faults")
    imu = FakeImu(tmp / "imu")
    radar = FakeRadar(tmp / "radar-cli", tmp / "radar-data")
    imu.start()
    radar.start()
    config = write_config(
        tmp,
        imu_link=tmp / "imu",
        radar_links=(tmp / "radar-cli", tmp / "radar-data"),
        window={"stale_s": STALE_S},
    )
    daemon = DaemonRun(config, tmp / "daemon.log")
    try:
        assert daemon.wait_windows(3, 60.0, with_modality="imu"), daemon.log()[-3000:]
        yield daemon, imu, radar
        assert daemon.terminate() == 0, daemon.log()[-3000:]
    finally:
        daemon.close()
        imu.stop()
        radar.stop()


@pytest.fixture
def healthy(rig):
    """The rig, after windows with all three modalities flowed again and the daemon is ready."""
    daemon, imu, radar = rig
    now = time.monotonic_ns()
    assert daemon.wait_windows(2, RECOVER_S, since_ns=now, with_modality="imu"), daemon.log()[-3000:]
    assert wait_for(lambda: daemon.ready()[0], RECOVER_S), daemon.ready()
    return rig


def _all_present_since(daemon, since_ns, count=2, timeout_s=RECOVER_S):
    """True once ``count`` windows with imu, radar and depth present arrived after ``since_ns``."""

    def ok():
        full = [w for w in daemon.windows(since_ns) if all(w["present"].values())]
        return len(full) >= count

    return wait_for(ok, timeout_s)


def _mostly_present(windows, modalities, share=0.8):
    """At least ``share`` of ``windows`` carry every one of ``modalities`` (the others kept working).

    Not all of them: on a loaded machine an occasional window has too few radar or depth frames.
    """
    full = [w for w in windows if all(w["present"][m] for m in modalities)]
    assert windows and len(full) >= share * len(windows), [w["missing"] for w in windows]


def _restarts(daemon, stream):
    return daemon.statuses()[-1]["sensors"][stream]["restarts"]


def test_garbage_on_the_serial_stream_is_counted_and_valid_lines_still_parse(healthy):
    """Expected: random bytes, lines with a wrong checksum and an over-long line on the IMU wire each
    count as bad frames (``stream_frames_bad_total``) or skipped bytes; the valid lines around them
    keep parsing (``stream_samples_total`` rises), the sensor thread does not restart and windows
    keep carrying the IMU."""
    daemon, imu, _ = healthy
    bad0 = daemon.metric("cosmo_edge_stream_frames_bad_total", stream="imu")
    samples0 = daemon.metric("cosmo_edge_stream_samples_total", stream="imu")
    restarts0 = _restarts(daemon, "imu")
    rng = np.random.default_rng(8)
    wrong_checksum = [b"%d,1,2,3,4,5,6*FF\r\n" % (i + 5) for i in range(20)]  # XORs of digits, commas < 0x40
    for chunk in range(5):
        imu.inject(bytes(rng.integers(0, 256, 800, dtype=np.uint8)) + b"\r\n")
        imu.inject(b"".join(wrong_checksum[chunk * 4 : chunk * 4 + 4]))
        time.sleep(0.1)
    imu.inject(b"9" * 600 + b"\r\n")  # over the 256-byte line limit
    started = time.monotonic_ns()
    assert wait_for(
        lambda: daemon.metric("cosmo_edge_stream_frames_bad_total", stream="imu") >= bad0 + 20, 10.0
    ), daemon.log()[-2000:]
    assert _all_present_since(daemon, started), daemon.log()[-2000:]
    assert wait_for(
        lambda: daemon.metric("cosmo_edge_stream_samples_total", stream="imu") > samples0 + 200, 10.0
    )
    assert _restarts(daemon, "imu") == restarts0
    assert daemon.proc.poll() is None


def test_nan_and_inf_values_are_rejected_and_never_published(healthy):
    """Expected: IMU lines with ``nan``/``inf`` fields (valid checksum) are bad frames, radar points
    with NaN/Inf coordinates are dropped and counted (``points_invalid`` in the status message); no
    published window carries a non-finite probability and windows keep all three modalities."""
    daemon, imu, radar = healthy
    bad0 = daemon.metric("cosmo_edge_stream_frames_bad_total", stream="imu")
    started = time.monotonic_ns()
    imu.nonfinite = radar.nonfinite = True
    sent0 = imu.bad_lines_sent
    try:
        time.sleep(4.0)
    finally:
        imu.nonfinite = radar.nonfinite = False
    sent = imu.bad_lines_sent - sent0
    assert sent >= 50
    assert wait_for(
        lambda: daemon.metric("cosmo_edge_stream_frames_bad_total", stream="imu") >= bad0 + sent, 5.0
    )
    assert wait_for(
        lambda: daemon.statuses()[-1]["sensors"]["radar"]["driver"].get("points_invalid", 0) >= 2, 5.0
    ), daemon.statuses()[-1]["sensors"]["radar"]
    assert _all_present_since(daemon, started, count=4)
    windows = daemon.windows(started)
    for window in windows:
        values = list(window["probabilities"].values()) + [window["confidence"]]
        assert all(math.isfinite(v) for v in values), window
        assert abs(sum(window["probabilities"].values()) - 1.0) < 1e-3


@pytest.mark.parametrize("jump_s", [1000.0, -5.0], ids=["forward-1000s", "backward-5s"])
def test_device_clock_jump_resets_the_timebase_and_windows_keep_flowing(healthy, jump_s):
    """Expected: a device clock that jumps (+1000 s, or 5 s back as after a device restart) resets
    the IMU's timebase (``clock_resets_total`` rises), the IMU is masked while it re-converges,
    windows keep flowing from radar and depth meanwhile, the IMU is present again afterwards, and
    no window has an absurd time: window ends increase and lie within a few seconds of the moment
    they were received, and the newest sample of a window lies inside it."""
    daemon, imu, _ = healthy
    resets0 = daemon.metric("cosmo_edge_clock_resets_total", stream="imu")
    started = time.monotonic_ns()
    imu.offset_us += int(jump_s * 1e6)
    assert wait_for(lambda: daemon.metric("cosmo_edge_clock_resets_total", stream="imu") > resets0, 15.0), (
        daemon.log()[-3000:]
    )
    assert "timebase imu: reset" in daemon.log()
    after_reset = time.monotonic_ns()
    assert _all_present_since(daemon, after_reset), daemon.log()[-3000:]
    with daemon._lock:
        received = [(b, at) for t, b, at in daemon.messages if t == "activity.window" and at >= started]
    ends = [b["window_end_ns"] for b, _ in received]
    assert ends == sorted(ends) and len(set(ends)) == len(ends)
    for body, at in received:
        assert 0 <= at - body["window_end_ns"] < 5e9, body
        last = body.get("last_sample_ns")
        if last is not None:
            assert body["window_start_ns"] <= last <= body["window_end_ns"], body
    # radar and depth kept the daemon predicting while the IMU re-converged
    _mostly_present(daemon.windows(started), ("radar", "depth"))


def test_stalled_sensor_goes_stale_and_the_rest_keep_predicting(healthy):
    """Expected: an IMU that stays connected but sends nothing is reported stale within the stale
    limit: windows mark it missing (``stale``), ``/readyz`` answers 503 naming it, ``/healthz`` stays
    200, and the daemon keeps predicting from radar and depth; when it sends again it is back."""
    daemon, imu, _ = healthy
    imu.stalled = True
    try:
        started = time.monotonic_ns()
        assert wait_for(lambda: not daemon.ready()[0], STALE_S + 5.0), daemon.ready()
        ready, body = daemon.ready()
        assert body["checks"]["sensors"]["imu"] is False
        assert any("imu" in reason for reason in body["reasons"]), body
        assert daemon.get("/healthz")[0] == 200
        assert daemon.metric("cosmo_edge_stream_connected", stream="imu") == 0
        time.sleep(2.0)
        stale = [w for w in daemon.windows(started) if not w["present"]["imu"]]
        assert len(stale) >= 2, daemon.windows(started)
        assert all(w["missing"].get("imu") in ("stale", "too_few") for w in stale)
        _mostly_present(stale, ("radar", "depth"))
    finally:
        imu.stalled = False
    resumed = time.monotonic_ns()
    assert _all_present_since(daemon, resumed), daemon.log()[-3000:]
    assert wait_for(lambda: daemon.ready()[0], RECOVER_S)


def test_serial_unplug_and_replug_reconnects_at_the_same_path(healthy):
    """Expected: closing the IMU's pty and removing its link (a USB unplug) is logged as a lost port,
    ``stream_connected{stream="imu"}`` drops to 0 and ``/readyz`` to 503 while windows flow without
    the IMU; a new pty at the same link (udev after a replug) is reopened by the driver
    (``stream_reconnects_total`` rises) and windows carry the IMU again, without a restart of the
    sensor thread."""
    daemon, imu, _ = healthy
    reconnects0 = daemon.metric("cosmo_edge_stream_reconnects_total", stream="imu")
    restarts0 = _restarts(daemon, "imu")
    imu.unplug()
    unplugged = time.monotonic_ns()
    try:
        assert wait_for(
            lambda: daemon.metric("cosmo_edge_stream_connected", stream="imu") == 0, STALE_S + 5.0
        ), daemon.log()[-2000:]
        assert wait_for(lambda: not daemon.ready()[0], 5.0)
        assert "serial port" in daemon.log() and "lost" in daemon.log()
        time.sleep(2.0)
        without = [w for w in daemon.windows(unplugged) if not w["present"]["imu"]]
        assert without
        _mostly_present(without, ("radar", "depth"))
    finally:
        imu.plug()
    replugged = time.monotonic_ns()
    assert wait_for(
        lambda: daemon.metric("cosmo_edge_stream_reconnects_total", stream="imu") > reconnects0, 15.0
    ), daemon.log()[-3000:]
    # the claim is about the IMU; radar and depth have their own tests (an occasional depth window
    # with too few frames on a loaded machine must not fail this one)
    imu_back = daemon.wait_windows(2, RECOVER_S, since_ns=replugged, with_modality="imu")
    missing = [w["missing"] for w in daemon.windows(replugged)]
    assert imu_back, (missing[-40:], daemon.log()[-3000:])
    assert wait_for(lambda: daemon.ready()[0], RECOVER_S), daemon.ready()
    assert _restarts(daemon, "imu") == restarts0

"""DaemonOperations on a stand-in daemon: readiness, metrics from counters, the publish tap, the watchdog."""

import http.client
import json
import socket
import time
import types
from typing import Any, Dict, List, Optional, Tuple

import pytest

from cosmo_edge.daemon.operations import DaemonOperations
from cosmo_edge.publish import TOPIC_CHANGE, TOPIC_WINDOW
from cosmo_edge.sdnotify import Notifier


class FakeSensor:
    """The parts of a SensorThread that operations read."""

    def __init__(self, with_reads: bool = True) -> None:
        self.state = "open"
        self.last_sample_ns: Optional[int] = time.monotonic_ns()
        self.driver = {"frames_ok": 0, "frames_bad": 0}
        ring = types.SimpleNamespace(drops=0)
        timebase = types.SimpleNamespace(state="locked", drift_ppm=12.0, counters={"resets": 0})
        self.channel = types.SimpleNamespace(ring=ring, timebase=timebase)
        if with_reads:
            self.reads = 0

    def counters(self) -> Dict[str, Any]:
        return {"state": self.state, "driver": dict(self.driver)}


class FakeDaemon:
    def __init__(self, sensors: Dict[str, FakeSensor]) -> None:
        self.sensors = sensors
        self.failed_sensors: Dict[str, str] = {}
        self.config = types.SimpleNamespace(window=types.SimpleNamespace(hop_s=0.5, stale_s=5.0))
        self.timing = types.SimpleNamespace(host_s=lambda s: s)
        self.predictor = types.SimpleNamespace(version="m-7", engine="onnxruntime")
        self.model_path = "/var/lib/cosmo-edge/models/current.pt"
        self.published: List[Tuple[str, Any]] = []
        self.inference = types.SimpleNamespace(
            counters={"windows": 0, "published": 0},
            cutter=types.SimpleNamespace(counters={"windows": 0, "skipped_hops": 0}),
            publish=lambda topic, payload: self.published.append((topic, payload)),
        )
        self.publisher = types.SimpleNamespace(counters=lambda: {"dropped": 3})

    def status_line(self) -> str:
        return "imu open; onnxruntime"


def _get(ops: DaemonOperations, path: str) -> Tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", ops.server.port, timeout=5)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


@pytest.fixture()
def notify_socket(tmp_path):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(tmp_path / "notify.sock"))
    sock.setblocking(False)
    yield sock
    sock.close()


def _flow(daemon: FakeDaemon, windows: int = 1) -> None:
    """One more due window, classified and published, and fresh samples from every sensor."""
    daemon.inference.counters["windows"] += windows
    daemon.inference.counters["published"] += windows
    for sensor in daemon.sensors.values():
        sensor.last_sample_ns = time.monotonic_ns()
        sensor.driver["frames_ok"] += 10
        if hasattr(sensor, "reads"):
            sensor.reads += 5


def test_ready_only_when_sensors_deliver_and_windows_flow(monkeypatch) -> None:
    monkeypatch.delenv("WATCHDOG_USEC", raising=False)
    daemon = FakeDaemon({"imu": FakeSensor(), "radar": FakeSensor()})
    daemon.sensors["radar"].last_sample_ns = None  # opened, nothing received yet
    ops = DaemonOperations(daemon, Notifier(None), port=0)
    ops.start()
    try:
        status, body = _get(ops, "/readyz")
        reasons = json.loads(body)["reasons"]
        assert status == 503 and "sensors not connected: radar" in reasons and "no window cut yet" in reasons
        _flow(daemon)
        assert ops.wait_until_ready(timeout_s=5.0)
        assert _get(ops, "/readyz")[0] == 200
        daemon.sensors["imu"].state = "backoff"  # its driver failed and is being restarted
        ready, body = ops.readiness()
        assert not ready and body["reasons"] == ["sensors not connected: imu"]
        assert _get(ops, "/healthz")[0] == 200
    finally:
        ops.stop()


def test_a_sensor_that_could_not_be_built_keeps_the_daemon_unready(monkeypatch) -> None:
    monkeypatch.delenv("WATCHDOG_USEC", raising=False)
    daemon = FakeDaemon({"imu": FakeSensor()})
    daemon.failed_sensors = {"depth": "MissingDependencyError: pyrealsense2"}
    ops = DaemonOperations(daemon, Notifier(None), serve_http=False)
    ops.start()
    try:
        _flow(daemon)
        assert not ops.wait_until_ready(timeout_s=0.3)
        assert ops.readiness()[1]["reasons"] == ["sensors not connected: depth"]
    finally:
        ops.stop()


def test_metrics_follow_counters_and_the_publish_tap(monkeypatch) -> None:
    monkeypatch.delenv("WATCHDOG_USEC", raising=False)
    daemon = FakeDaemon({"imu": FakeSensor()})
    ops = DaemonOperations(daemon, Notifier(None), port=0)
    ops.start()
    try:
        daemon.sensors["imu"].driver.update(frames_ok=250, frames_bad=4)
        daemon.sensors["imu"].channel.ring.drops = 2
        daemon.inference.counters.update(windows=9, published=8)
        daemon.inference.cutter.counters.update(windows=9, skipped_hops=1)
        window = {"latency_ms": 4.0, "missing": {"radar": "stale"}, "label": "walk"}
        daemon.inference.publish(TOPIC_WINDOW, window)
        daemon.inference.publish(TOPIC_CHANGE, {"label": "walk"})
        assert daemon.published == [(TOPIC_WINDOW, window), (TOPIC_CHANGE, {"label": "walk"})]
        ops.refresh()
        registry = ops.metrics.registry
        assert registry.get_sample_value("cosmo_edge_stream_samples_total", {"stream": "imu"}) == 250
        assert registry.get_sample_value("cosmo_edge_stream_frames_bad_total", {"stream": "imu"}) == 4
        assert registry.get_sample_value("cosmo_edge_stream_drops_total", {"stream": "imu"}) == 2
        assert registry.get_sample_value("cosmo_edge_stream_connected", {"stream": "imu"}) == 1
        assert registry.get_sample_value("cosmo_edge_clock_drift_ppm", {"stream": "imu"}) == 12.0
        assert registry.get_sample_value("cosmo_edge_windows_skipped_hops_total") == 1
        assert registry.get_sample_value("cosmo_edge_publish_dropped_total") == 3
        latency = {"backend": "onnxruntime"}
        assert registry.get_sample_value("cosmo_edge_inference_latency_seconds_count", latency) == 1
        missing = {"modality": "radar", "reason": "stale"}
        assert registry.get_sample_value("cosmo_edge_modality_missing_total", missing) == 1
        info = {"version": "m-7", "backend": "onnxruntime", "path": daemon.model_path}
        assert registry.get_sample_value("cosmo_edge_model_info", info) == 1
        assert b"cosmo_edge_stream_samples_total" in _get(ops, "/metrics")[1]
    finally:
        ops.stop()


def test_watchdog_pings_while_flowing_and_stops_when_inference_hangs(monkeypatch, notify_socket) -> None:
    monkeypatch.setenv("WATCHDOG_USEC", "200000")  # checks every 0.1 s
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    daemon = FakeDaemon({"imu": FakeSensor(), "radar": FakeSensor(with_reads=False)})
    ops = DaemonOperations(daemon, Notifier(notify_socket.getsockname()), serve_http=False)
    ops.start()
    try:
        assert ops.watchdog.stages() == ["inference", "sensor-imu"]  # radar counts no read loops
        pings = ops.watchdog.counters["pings"]
        deadline = time.monotonic() + 10
        while ops.watchdog.counters["pings"] < pings + 2:
            assert time.monotonic() < deadline
            _flow(daemon)
            time.sleep(0.02)
        skipped = ops.watchdog.counters["skipped"]
        while ops.watchdog.counters["skipped"] < skipped + 2:  # nothing moves: a hung predict()
            assert time.monotonic() < deadline
            time.sleep(0.02)
        received = []
        while True:
            try:
                received.append(notify_socket.recv(4096))
            except BlockingIOError:
                break
        assert b"WATCHDOG=1" in received
        assert any(m.startswith(b"STATUS=stalled: inference") for m in received)
    finally:
        ops.stop()


def test_a_taken_health_port_does_not_stop_the_rest(monkeypatch) -> None:
    monkeypatch.delenv("WATCHDOG_USEC", raising=False)
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", 0))
    blocker.listen(1)
    try:
        daemon = FakeDaemon({"imu": FakeSensor()})
        ops = DaemonOperations(daemon, Notifier(None), port=blocker.getsockname()[1])
        ops.start()
        try:
            assert ops.server is None
            _flow(daemon)
            assert ops.wait_until_ready(timeout_s=5.0)
        finally:
            ops.stop()
    finally:
        blocker.close()


@pytest.mark.slow
def test_on_the_real_daemon_with_the_simulator(tmp_path, monkeypatch) -> None:
    pytest.importorskip("pyrealsense2")
    pytest.importorskip("zmq")
    import yaml

    from cosmo_edge.bundled import SIM_CONFIG, SIM_MODEL
    from cosmo_edge.config import parse_config
    from cosmo_edge.daemon.app import Daemon

    monkeypatch.delenv("WATCHDOG_USEC", raising=False)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    raw = yaml.safe_load(SIM_CONFIG.read_text(encoding="utf-8"))
    raw["simulator"].update(speed=2.0, ground_truth_file=str(tmp_path / "truth.jsonl"))
    raw["model"]["path"] = str(SIM_MODEL)
    raw["publish"]["endpoint"] = f"tcp://127.0.0.1:{port}"
    raw["state_dir"] = str(tmp_path / "state")
    daemon = Daemon(parse_config(yaml.safe_dump(raw)))
    ops = None
    try:
        daemon.start()
        ops = DaemonOperations(daemon, Notifier(None), port=0)
        ops.start()
        assert ops.wait_until_ready(timeout_s=60.0)
        status, body = _get(ops, "/readyz")
        assert status == 200 and json.loads(body)["checks"]["sensors"] == {
            "imu": True,
            "radar": True,
            "depth": True,
        }
        deadline = time.monotonic() + 30
        registry = ops.metrics.registry
        latency = {"backend": daemon.predictor.engine}
        while (registry.get_sample_value("cosmo_edge_inference_latency_seconds_count", latency) or 0) < 3:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        ops.refresh()
        for stream in ("imu", "radar", "depth"):
            assert registry.get_sample_value("cosmo_edge_stream_samples_total", {"stream": stream}) > 0
            assert registry.get_sample_value("cosmo_edge_stream_frames_bad_total", {"stream": stream}) == 0
            assert registry.get_sample_value("cosmo_edge_clock_locked", {"stream": stream}) in (0.0, 1.0)
        assert _get(ops, "/healthz")[0] == 200
    finally:
        if ops is not None:
            ops.stop()
        daemon.stop()

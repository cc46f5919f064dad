"""Health endpoint: real HTTP requests to a real server on 127.0.0.1, port 0."""

import http.client
import json
import socket
from typing import Dict, Iterator, List, Tuple

import pytest
from prometheus_client.parser import text_string_to_metric_families

from cosmo_edge.health import HealthServer, HealthState
from cosmo_edge.metrics import Metrics


class FakeClock:
    def __init__(self) -> None:
        self.now_s = 1000.0

    def __call__(self) -> float:
        return self.now_s


def _request(server: HealthServer, path: str, method: str = "GET") -> Tuple[int, Dict[str, str], bytes]:
    host, port = server.server_address[:2]
    conn = http.client.HTTPConnection(host, port, timeout=5)
    try:
        conn.request(method, path)
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


@pytest.fixture()
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture()
def state(clock) -> HealthState:
    return HealthState(["imu", "radar"], liveness_timeout_s=10.0, window_timeout_s=5.0, clock=clock)


@pytest.fixture()
def metrics() -> Metrics:
    return Metrics(process_metrics=False)


@pytest.fixture()
def server(state, metrics) -> Iterator[HealthServer]:
    srv = HealthServer(state, metrics.registry, host="127.0.0.1", port=0)
    srv.start()
    yield srv
    srv.stop()


def test_healthz_follows_the_inference_loop(server, state, clock) -> None:
    status, headers, body = _request(server, "/healthz")
    assert status == 200 and headers["Content-Type"] == "application/json"
    assert json.loads(body)["status"] == "starting"

    state.loop_tick()
    clock.now_s += 9.0
    status, _, body = _request(server, "/healthz")
    doc = json.loads(body)
    assert status == 200 and doc["status"] == "ok" and doc["loop_ticks"] == 1
    assert doc["last_tick_age_s"] == pytest.approx(9.0)

    clock.now_s += 2.0  # 11 s without a tick: the loop is stuck
    status, _, body = _request(server, "/healthz")
    assert status == 503 and json.loads(body)["status"] == "stalled"

    state.loop_tick()
    assert _request(server, "/healthz")[0] == 200


def test_readyz_needs_sensors_model_and_flowing_windows(server, state, clock) -> None:
    status, _, body = _request(server, "/readyz")
    doc = json.loads(body)
    assert status == 503 and doc["ready"] is False
    assert doc["reasons"] == [
        "sensors not connected: imu, radar",
        "model not warmed up",
        "no window cut yet",
    ]

    state.set_sensor("imu", True)
    state.set_sensor("radar", True)
    state.set_model(True, "onnxruntime")
    state.window_cut()
    status, _, body = _request(server, "/readyz")
    doc = json.loads(body)
    assert status == 200 and doc["ready"] is True and doc["reasons"] == []
    assert doc["checks"]["model"] == {"warm": True, "backend": "onnxruntime"}
    assert doc["checks"]["sensors"] == {"imu": True, "radar": True}

    state.set_sensor("radar", False)  # unplugged: degraded, not ready
    status, _, body = _request(server, "/readyz")
    assert status == 503 and json.loads(body)["reasons"] == ["sensors not connected: radar"]

    state.set_sensor("radar", True)
    clock.now_s += 6.0  # windows stopped flowing
    status, _, body = _request(server, "/readyz")
    assert status == 503 and json.loads(body)["reasons"][0].startswith("no window for 6.0 s")


def test_metrics_page_is_prometheus_text(server, metrics) -> None:
    metrics.observe_inference(0.004, "onnxruntime")
    metrics.observe_inference(0.030, "onnxruntime")
    metrics.update_driver("imu", {"frames_ok": 120, "frames_bad": 2, "reconnects": 1}, connected=True)
    metrics.set_model("2024-05-01-r3", "onnxruntime", path="/var/lib/cosmo-edge/models/current.pt")
    status, headers, body = _request(server, "/metrics")
    assert status == 200 and headers["Content-Type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(body.decode("utf-8")):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    assert samples[("cosmo_edge_inference_latency_seconds_count", (("backend", "onnxruntime"),))] == 2
    bucket_5ms = (("backend", "onnxruntime"), ("le", "0.005"))
    assert samples[("cosmo_edge_inference_latency_seconds_bucket", bucket_5ms)] == 1
    assert samples[("cosmo_edge_stream_samples_total", (("stream", "imu"),))] == 120
    assert samples[("cosmo_edge_stream_frames_bad_total", (("stream", "imu"),))] == 2
    info_labels = (
        ("backend", "onnxruntime"),
        ("path", "/var/lib/cosmo-edge/models/current.pt"),
        ("version", "2024-05-01-r3"),
    )
    assert samples[("cosmo_edge_model_info", info_labels)] == 1


def test_unknown_paths_head_and_other_methods(server) -> None:
    status, _, body = _request(server, "/nope")
    assert status == 404 and "/readyz" in json.loads(body)["paths"]
    status, headers, body = _request(server, "/healthz", method="HEAD")
    assert status == 200 and body == b"" and int(headers["Content-Length"]) > 0
    assert _request(server, "/healthz", method="POST")[0] == 501
    assert _request(server, "/healthz?verbose=1")[0] == 200


def test_refuses_to_bind_anything_but_loopback(state) -> None:
    for host in ("0.0.0.0", "192.168.1.10", "example.com", "::"):
        with pytest.raises(ValueError, match="loopback"):
            HealthServer(state, host=host, port=0)


def test_ipv6_loopback_and_a_taken_port(state) -> None:
    first = HealthServer(state, host="127.0.0.1", port=0)
    first.start()
    try:
        second = HealthServer(state, host="127.0.0.1", port=first.port)
        with pytest.raises(OSError):
            second.start()
    finally:
        first.stop()
    if not socket.has_ipv6:
        pytest.skip("no IPv6 on this machine")
    try:
        v6 = HealthServer(state, host="::1", port=0)
        v6.start()
    except OSError as exc:
        pytest.skip(f"cannot bind ::1 here: {exc}")
    try:
        assert _request(v6, "/healthz")[0] == 200
    finally:
        v6.stop()


def test_many_concurrent_scrapes_are_answered(server, state) -> None:
    import threading

    statuses: List[int] = []
    lock = threading.Lock()

    def scrape() -> None:
        code = _request(server, "/metrics")[0]
        with lock:
            statuses.append(code)

    threads = [threading.Thread(target=scrape) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert statuses == [200] * 16

"""End to end: simulator -> real drivers -> daemon process -> a real ZeroMQ subscriber in this test.

``python -m cosmo_edge run`` runs as a subprocess on the simulator (speed 2) with the bundled model;
this test subscribes, scores every ``activity.window`` against the simulator's script (the activity
covering most of the window), prints the accuracy, then sends SIGTERM and expects a clean exit 0.
Run as systemd would (a ``NOTIFY_SOCKET`` datagram socket from the test), it must send READY=1, and
its ``/readyz`` must answer 200 while windows flow.

Floors (the bundled model's held-out window accuracy is in cosmo_edge/assets/sim_model.json): at least
80 % of all windows and 90 % of the windows that lie inside one scripted activity. Windows straddling
a change of activity are ambiguous by construction, hence the lower floor over all windows.
"""

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from cosmo_edge.bundled import SIM_CONFIG, SIM_MODEL
from cosmo_edge.daemon.view import GroundTruth
from cosmo_edge.publish import unpack_message
from cosmo_edge.runtime.artifacts import sha256_file

zmq = pytest.importorskip("zmq")
pytest.importorskip("pyrealsense2")

REPO = Path(__file__).resolve().parent.parent
FLOOR_ALL, FLOOR_SETTLED = 0.80, 0.90
SCRIPT = "stand_still:6,walk:6,wave:6,clap:6,squat:6,sit:6"  # sensor seconds
SPEED = 2.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _config(tmp_path: Path, endpoint: str) -> Path:
    config = yaml.safe_load(SIM_CONFIG.read_text(encoding="utf-8"))
    config["simulator"].update(script=SCRIPT, speed=SPEED, ground_truth_file=str(tmp_path / "truth.jsonl"))
    config["model"]["path"] = str(SIM_MODEL)
    config["publish"]["endpoint"] = endpoint
    config["state_dir"] = str(tmp_path / "state")
    path = tmp_path / "daemon.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def _get_json(port: int, path: str):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()


def _drain(sock: socket.socket):
    out = []
    while True:
        try:
            out.append(sock.recv(4096).decode())
        except BlockingIOError:
            return out


@pytest.mark.slow
def test_daemon_on_simulator_publishes_accurate_predictions_and_stops_on_sigterm(tmp_path):
    endpoint = f"tcp://127.0.0.1:{_free_port()}"
    context = zmq.Context()
    sub = context.socket(zmq.SUB)
    sub.setsockopt(zmq.RCVHWM, 10000)
    sub.setsockopt(zmq.LINGER, 0)
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    sub.connect(endpoint)  # before the daemon binds: ZeroMQ connects when it appears
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(tmp_path / "notify.sock"))
    notify.settimeout(0.0)
    health_port = _free_port()
    env = dict(os.environ, NOTIFY_SOCKET=str(tmp_path / "notify.sock"))
    log = (tmp_path / "daemon.log").open("w")
    command = [sys.executable, "-m", "cosmo_edge", "run", "--config", str(_config(tmp_path, endpoint))]
    proc = subprocess.Popen(command + ["--health-port", str(health_port)], cwd=str(REPO), stderr=log, env=env)
    messages, ready = [], None
    try:
        truth = GroundTruth(tmp_path / "truth.jsonl")
        deadline = time.monotonic() + 120
        script_end_ns = None
        while time.monotonic() < deadline and proc.poll() is None:
            if sub.poll(200):
                messages.append(unpack_message(sub.recv_multipart()))
            if script_end_ns is None and truth.refresh():
                script_end_ns = truth.segments[-1][1]
            if ready is None and len(messages) > 20:
                ready = _get_json(health_port, "/readyz")
            if script_end_ns is not None and time.monotonic_ns() > script_end_ns:
                break  # the script has played; the daemon would linger then exit on its own
        assert proc.poll() is None, "the daemon exited before SIGTERM"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()
        notifications = _drain(notify)
        notify.close()
        sub.close(linger=0)
        context.term()
    log_text = (tmp_path / "daemon.log").read_text()
    assert "daemon stopped" in log_text
    assert any(n.startswith("READY=1") for n in notifications) and "STOPPING=1" in notifications
    assert ready is not None and ready[0] == 200 and ready[1]["ready"] is True, ready
    windows = [m for topic, m in messages if topic == "activity.window"]
    status = [m for topic, m in messages if topic == "status"]
    version = sha256_file(SIM_MODEL)[:12]
    assert len(windows) >= 20, log_text[-3000:]
    assert status and all(m["model_version"] == version for m in windows + status)
    assert [m["seq"] for m in windows] == list(range(windows[0]["seq"], windows[0]["seq"] + len(windows)))
    scored = settled = hits = settled_hits = 0
    for m in windows:
        label, share = truth.window_label(m["window_start_ns"], m["window_end_ns"])
        if label is None:
            continue
        scored += 1
        hits += m["label"] == label
        if share >= 0.999:
            settled += 1
            settled_hits += m["label"] == label
    accuracy, settled_accuracy = hits / scored, settled_hits / settled
    print(
        f"\nend-to-end accuracy vs the simulator's script: {hits}/{scored} = {accuracy:.3f} of all windows, "
        f"{settled_hits}/{settled} = {settled_accuracy:.3f} inside one activity "
        f"(floors {FLOOR_ALL}, {FLOOR_SETTLED})"
    )
    assert accuracy >= FLOOR_ALL and settled_accuracy >= FLOOR_SETTLED
    changes = [m for topic, m in messages if topic == "activity.change"]
    assert 3 <= len(changes) <= 12  # activity changes follow the script, without flicker

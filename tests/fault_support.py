"""Fault injection around a real ``cosmo-edge run`` process, for the ``test_faults_*`` suite.

- ``FakeImu``: an IMU the test owns, behind a pty symlink the daemon's config names (as udev names a
  USB adapter). A thread writes ``timestamped_text`` lines at ``rate_hz`` on the host clock; the test
  can unplug/replug it (the pty closed and a new one linked at the same path), stall it, shift its
  device clock, or slip garbage and non-finite lines in between valid ones.
- ``FakeRadar``: a TI radar the test owns (the simulator's CLI responder on one pty, SDK 3.x point
  cloud packets on another), optionally with NaN/Inf points.
- ``DaemonRun``: the daemon as a subprocess (``python -m cosmo_edge run``, optionally behind a
  wrapper that execs it) with its log read through a pipe (so a file-size limit or a full disk
  never hides its log), a ZeroMQ subscriber collecting every message, and helpers for
  ``/healthz``, ``/readyz`` and ``/metrics``.
- ``write_config``: a config for such a run: the fake IMU and radar, depth from the built-in
  simulator (optional), labels and fine-tuning as asked.
"""

import http.client
import json
import math
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np
import yaml

from cosmo_edge.bundled import SIM_CONFIG, SIM_MODEL
from cosmo_edge.publish import unpack_message
from drivers import imu_text
from drivers.radar_ti_parser import build_packet
from drivers.sim.pty_device import PtyDevice
from drivers.sim.ti_radar_device import FakeTiRadar

REPO = Path(__file__).resolve().parent.parent
IMU_RATE_HZ = 100.0
BATCH_S = 0.02
_METRIC_RE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)$")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(condition: Callable[[], bool], timeout_s: float, period_s: float = 0.1) -> bool:
    """Poll ``condition`` until it holds (True) or ``timeout_s`` passed (False)."""
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if condition():
            return True
        time.sleep(period_s)
    return bool(condition())


# ---------------------------------------------------------------------------------------- devices


class FakeImu(threading.Thread):
    """A ``timestamped_text`` IMU on a pty behind ``link_path``; see the module docstring.

    Attributes the test may change at any time: ``stalled`` (write nothing), ``offset_us`` (added to
    the device clock: a clock jump), ``nonfinite`` (every fifth line carries ``nan``/``inf`` fields
    with a valid checksum).
    """

    def __init__(self, link_path: Path, rate_hz: float = IMU_RATE_HZ, seed: int = 0) -> None:
        super().__init__(name="fake-imu", daemon=True)
        self.pty = PtyDevice(str(link_path))
        self.rate_hz = float(rate_hz)
        self.rng = np.random.default_rng(seed)
        self.stalled = False
        self.offset_us = 0
        self.nonfinite = False
        self.lines_sent = 0
        self.bad_lines_sent = 0
        self._pending: List[bytes] = []
        self._lock = threading.Lock()
        self._stop_event = threading.Event()
        self.pty.plug()

    def inject(self, data: bytes) -> None:
        """Write ``data`` between two sample lines (garbage on the wire)."""
        with self._lock:
            self._pending.append(data)

    def unplug(self) -> None:
        self.pty.unplug()

    def plug(self) -> None:
        self.pty.plug()

    def stop(self) -> None:
        self._stop_event.set()
        self.join(2.0)
        self.pty.close()

    def _line(self, index: int) -> bytes:
        t_s = index / self.rate_hz
        acc = [0.1 * math.sin(2 * math.pi * 1.3 * t_s), 0.05, 1.0]
        gyro = [20.0 * math.sin(2 * math.pi * 0.7 * t_s), 5.0, -3.0]
        noise = self.rng.normal(0.0, 0.01, 6)
        counts = imu_text.units_to_counts(np.array([acc + gyro]) + noise, 16, 2000)[0].tolist()
        t_us = (1_000_000 + int(round(index * 1e6 / self.rate_hz)) + self.offset_us) % imu_text.U32_MODULUS
        if self.nonfinite and index % 5 == 0:
            self.bad_lines_sent += 1
            body = f"{t_us},nan,{counts[1]},inf,{counts[3]},-inf,{counts[5]}".encode()
            checksum = 0
            for byte in body:
                checksum ^= byte
            return body + b"*%02X\r\n" % checksum
        return imu_text.format_timestamped_line(t_us, tuple(int(c) for c in counts))

    def run(self) -> None:
        start_ns = time.monotonic_ns()
        index = 0
        while not self._stop_event.wait(BATCH_S):
            due = int((time.monotonic_ns() - start_ns) * 1e-9 * self.rate_hz)
            chunks: List[bytes] = []
            with self._lock:
                chunks, self._pending = self._pending, []
            if self.stalled:
                index = due  # the device time keeps running while nothing is sent
            while index < due:
                chunks.append(self._line(index))
                index += 1
                self.lines_sent += 1
            if chunks:
                self.pty.write(b"".join(chunks))


class FakeRadar(threading.Thread):
    """A TI radar: CLI responder on ``cli_link``, point-cloud packets on ``data_link`` while started.

    ``nonfinite`` makes every packet carry, besides its valid points, a NaN and an Inf point.
    """

    def __init__(self, cli_link: Path, data_link: Path, seed: int = 1) -> None:
        super().__init__(name="fake-radar", daemon=True)
        self.cli = PtyDevice(str(cli_link))
        self.data = PtyDevice(str(data_link))
        self.cli.plug()
        self.data.plug()
        self.device = FakeTiRadar(self.cli)
        self.rng = np.random.default_rng(seed)
        self.nonfinite = False
        self.frames_sent = 0
        self._stop_event = threading.Event()

    def start(self) -> None:
        self.device.start()
        super().start()

    def stop(self) -> None:
        self._stop_event.set()
        self.join(2.0)
        self.device.stop()
        self.cli.close()
        self.data.close()

    def _points(self) -> np.ndarray:
        n = int(self.rng.integers(8, 24))
        centre = np.array([0.0, 2.0, 0.2])
        xyz = centre + self.rng.normal(0.0, [0.2, 0.1, 0.4], (n, 3))
        doppler = self.rng.normal(0.0, 0.3, (n, 1))
        points = np.hstack([xyz, doppler]).astype(np.float32)
        if self.nonfinite:
            bad = np.array([[np.nan, 2.0, 0.1, 0.0], [1.0, np.inf, 0.0, -np.inf]], dtype=np.float32)
            points = np.vstack([points, bad])
        return points

    def run(self) -> None:
        number, started = 1, self.device.starts
        while not self._stop_event.is_set():
            period_s = self.device.frame_period_s
            if not self.device.streaming or period_s is None:
                self._stop_event.wait(0.01)
                continue
            if self.device.starts != started:
                number, started = 1, self.device.starts
            points = self._points()
            snr = np.full(len(points), 150, dtype=np.int16)
            noise = np.full(len(points), 40, dtype=np.int16)
            self.data.write(build_packet(number, points, snr, noise))
            self.frames_sent += 1
            number += 1
            self._stop_event.wait(period_s)


# ---------------------------------------------------------------------------------------- config


def write_config(
    tmp_path: Path,
    imu_link: Optional[Path] = None,
    radar_links: Optional[Tuple[Path, Path]] = None,
    depth: bool = True,
    labels: bool = False,
    label_buffer_s: float = 60.0,
    finetune: Optional[Dict[str, Any]] = None,
    model: Path = SIM_MODEL,
    publish: Optional[Dict[str, Any]] = None,
    window: Optional[Dict[str, Any]] = None,
    script: str = ",".join(["stand_still:5,walk:5,wave:5,clap:5,squat:5,sit:5"] * 20),
    speed: float = 1.0,
) -> Path:
    """A daemon config on the given devices (see the module docstring); returns its path.

    The IMU and the radar are the simulator's unless ``imu_link`` / ``radar_links`` name test-owned
    devices; depth is the simulator's software camera when ``depth`` is set.
    """
    base = yaml.safe_load(SIM_CONFIG.read_text(encoding="utf-8"))
    by_type = {sensor["type"]: sensor for sensor in base["sensors"]}
    sensors: List[Dict[str, Any]] = []
    imu = by_type["imu_serial"]
    sensors.append(imu if imu_link is None else dict(imu, port=str(imu_link)))
    radar = by_type["radar_ti"]
    if radar_links is not None:
        radar = dict(radar, cli_port=str(radar_links[0]), data_port=str(radar_links[1]))
    sensors.append(radar)
    if depth:
        sensors.append(by_type["realsense_depth"])
    config: Dict[str, Any] = {"sensors": sensors, "timebase": base["timebase"], "model": dict(base["model"])}
    if any(str(v).startswith("sim:") for s in sensors for v in s.values()):
        config["simulator"] = dict(
            base["simulator"], script=script, speed=speed, ground_truth_file=str(tmp_path / "truth.jsonl")
        )
    config["window"] = dict(base["window"], **(window or {}))
    config["model"].update(path=str(model), backend="onnxruntime")
    config["publish"] = dict(base["publish"], endpoint=f"tcp://127.0.0.1:{free_port()}", **(publish or {}))
    if labels:
        endpoint = f"tcp://127.0.0.1:{free_port()}"
        config["labels"] = {"enabled": True, "endpoint": endpoint, "buffer_s": label_buffer_s}
    if finetune is not None:
        config["finetune"] = dict({"enabled": True}, **finetune)
    config["health"] = {"host": "127.0.0.1", "port": free_port()}
    config["state_dir"] = str(tmp_path / "state")
    config["log_level"] = "INFO"
    path = tmp_path / "daemon.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


# ---------------------------------------------------------------------------------------- daemon


class DaemonRun:
    """``python -m cosmo_edge run`` plus a subscriber and the health endpoint; see the module docstring."""

    def __init__(
        self,
        config_path: Path,
        log_path: Path,
        extra_args: Tuple[str, ...] = (),
        prefix: Tuple[str, ...] = (),
    ) -> None:
        import zmq

        self.config = yaml.safe_load(config_path.read_text(encoding="utf-8"))
        self.health_port = int(self.config["health"]["port"])  # served from the config's health section
        self.endpoint = self.config["publish"]["endpoint"]
        self.label_endpoint = self.config.get("labels", {}).get("endpoint")
        self.log_path = log_path
        self.log_lines: List[str] = []
        self.messages: List[Tuple[str, Dict[str, Any], int]] = []  # (topic, body, received monotonic ns)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.context = zmq.Context()
        self.sub = self.context.socket(zmq.SUB)
        self.sub.setsockopt(zmq.RCVHWM, 100000)
        self.sub.setsockopt(zmq.LINGER, 0)
        self.sub.setsockopt(zmq.SUBSCRIBE, b"")
        self.sub.connect(self.endpoint)
        command = [sys.executable, "-m", "cosmo_edge", "run", "--config", str(config_path)]
        command = list(prefix) + command + list(extra_args)  # prefix: e.g. a namespace wrapper that execs
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen(
            command, cwd=str(REPO), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env
        )
        self._log_thread = threading.Thread(target=self._read_log, name="daemon-log", daemon=True)
        self._log_thread.start()
        self._sub_thread = threading.Thread(target=self._receive, name="daemon-sub", daemon=True)
        self._sub_thread.start()

    # ------------------------------------------------------------------ background readers

    def _read_log(self) -> None:
        assert self.proc.stdout is not None
        with self.log_path.open("a", encoding="utf-8") as out:
            for raw in self.proc.stdout:
                line = raw.decode("utf-8", errors="replace")
                out.write(line)
                out.flush()
                with self._lock:
                    self.log_lines.append(line)

    def _receive(self) -> None:
        import zmq

        while not self._stop.is_set():
            try:
                if not self.sub.poll(100):
                    continue
                frames = self.sub.recv_multipart()
            except zmq.ZMQError:
                return
            topic, body = unpack_message(frames)
            with self._lock:
                self.messages.append((topic, body, time.monotonic_ns()))

    # ------------------------------------------------------------------ observations

    def log(self) -> str:
        with self._lock:
            return "".join(self.log_lines)

    def windows(self, since_ns: int = 0) -> List[Dict[str, Any]]:
        """``activity.window`` bodies received at or after host time ``since_ns``."""
        with self._lock:
            return [b for t, b, at in self.messages if t == "activity.window" and at >= since_ns]

    def statuses(self, since_ns: int = 0) -> List[Dict[str, Any]]:
        with self._lock:
            return [b for t, b, at in self.messages if t == "status" and at >= since_ns]

    def wait_windows(self, count: int, timeout_s: float, since_ns: int = 0, with_modality: str = "") -> bool:
        """True once ``count`` windows (with ``with_modality`` present if named) came since ``since_ns``."""

        def enough() -> bool:
            found = self.windows(since_ns)
            if with_modality:
                found = [w for w in found if w["present"].get(with_modality)]
            return len(found) >= count or self.proc.poll() is not None

        return wait_for(enough, timeout_s) and self.proc.poll() is None

    def get(self, path: str) -> Tuple[int, Any]:
        """(status, body) of a GET on the health port; JSON decoded except for ``/metrics``."""
        conn = http.client.HTTPConnection("127.0.0.1", self.health_port, timeout=5)
        try:
            conn.request("GET", path)
            response = conn.getresponse()
            text = response.read().decode("utf-8")
            return response.status, (text if path == "/metrics" else json.loads(text))
        finally:
            conn.close()

    def metric(self, name: str, **labels: str) -> float:
        """The value of ``name`` with ``labels`` on ``/metrics`` (0 when absent)."""
        try:
            _, text = self.get("/metrics")
        except OSError:
            return float("nan")
        wanted = [f'{k}="{v}"' for k, v in labels.items()]
        for line in text.splitlines():
            match = _METRIC_RE.match(line)
            if match and match.group(1) == name and all(w in (match.group(2) or "") for w in wanted):
                return float(match.group(3))
        return 0.0

    def ready(self) -> Tuple[bool, Dict[str, Any]]:
        try:
            status, body = self.get("/readyz")
        except OSError:
            return False, {"reasons": ["health endpoint unreachable"]}
        return status == 200, body

    def rss_bytes(self) -> int:
        """Resident memory of the daemon process (VmRSS)."""
        with open(f"/proc/{self.proc.pid}/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        raise RuntimeError("no VmRSS line")

    # ------------------------------------------------------------------ ending

    def kill9(self) -> None:
        """SIGKILL (a crash: nothing is cleaned up) and wait for the process."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=20)

    def terminate(self, timeout_s: float = 30.0) -> int:
        """SIGTERM and wait; the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=timeout_s)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._stop.set()
        self._sub_thread.join(2.0)
        self._log_thread.join(5.0)
        self.sub.close(linger=0)
        self.context.term()


def stored_message_ids(state_dir: Path) -> set:
    """Message ids in the label store (after ``PRAGMA integrity_check`` passed)."""
    import sqlite3

    from cosmo_edge.labels import store_path

    with sqlite3.connect(str(store_path(state_dir))) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        return {row[0] for row in conn.execute("SELECT message_id FROM label_events")}

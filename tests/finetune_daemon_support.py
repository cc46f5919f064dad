"""A real daemon process on the simulator with labels and fine-tuning on, for the learning tests.

``confused_model`` (``cosmo_edge.bundled.confused``) writes the bundled model with two pairs of
output rows swapped (wave <-> clap, squat <-> sit): a model that reads this person's waving as
clapping and squatting as sitting, i.e. handles four of the six activities poorly, while its encoders
are the bundled ones. Labels then teach it the person's mapping.
"""

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import yaml

from cosmo_edge.bundled import SIM_CONFIG
from cosmo_edge.bundled.confused import SWAPS, confused_model  # noqa: F401  (used by the learning tests)
from cosmo_edge.daemon.view import GroundTruth
from cosmo_edge.labels import LabelClientError, LabelRequest, send_label
from cosmo_edge.publish import unpack_message

REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def write_config(tmp_path: Path, script: str, speed: float, finetune: Dict[str, Any], model: Path) -> Path:
    """A daemon config on the simulator with labels and fine-tuning on; returns its path."""
    config = yaml.safe_load(SIM_CONFIG.read_text(encoding="utf-8"))
    config["simulator"].update(script=script, speed=speed, ground_truth_file=str(tmp_path / "truth.jsonl"))
    config["model"]["path"] = str(model)
    config["model"]["backend"] = "onnxruntime"
    config["publish"]["endpoint"] = f"tcp://127.0.0.1:{free_port()}"
    config["labels"] = {"enabled": True, "endpoint": f"tcp://127.0.0.1:{free_port()}", "buffer_s": 120.0}
    config["finetune"] = dict({"enabled": True}, **finetune)
    config["state_dir"] = str(tmp_path / "state")
    path = tmp_path / "daemon.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


class DaemonProcess:
    """``python -m cosmo_edge run`` in a subprocess with a ZeroMQ subscriber collecting its messages."""

    def __init__(self, tmp_path: Path, config_path: Path, name: str = "daemon") -> None:
        import zmq

        self.config = yaml.safe_load(config_path.read_text(encoding="utf-8"))
        self.label_endpoint = self.config["labels"]["endpoint"]
        self.context = zmq.Context()
        self.sub = self.context.socket(zmq.SUB)
        self.sub.setsockopt(zmq.RCVHWM, 100000)
        self.sub.setsockopt(zmq.LINGER, 0)
        self.sub.setsockopt(zmq.SUBSCRIBE, b"")
        self.sub.connect(self.config["publish"]["endpoint"])
        self.log_path = tmp_path / f"{name}.log"
        self._log = self.log_path.open("w")
        command = [sys.executable, "-m", "cosmo_edge", "run", "--no-health", "--config", str(config_path)]
        self.proc = subprocess.Popen(command, cwd=str(REPO), stderr=self._log, stdout=self._log)
        self.windows: List[Dict[str, Any]] = []
        self.truth = GroundTruth(tmp_path / "truth.jsonl")

    def pump(self, seconds: float) -> None:
        """Collect ``activity.window`` messages for ``seconds``."""
        end = time.monotonic() + seconds
        while time.monotonic() < end and self.proc.poll() is None:
            if self.sub.poll(100):
                topic, body = unpack_message(self.sub.recv_multipart())
                if topic == "activity.window":
                    self.windows.append(body)

    def settled(self, since: int = 0) -> List[Tuple[Dict[str, Any], str]]:
        """(window message, true activity) of received windows from ``since`` that lie in one activity."""
        self.truth.segments = []
        self.truth.refresh()
        out = []
        for message in self.windows[since:]:
            label, share = self.truth.window_label(message["window_start_ns"], message["window_end_ns"])
            if label is not None and share >= 0.999:
                out.append((message, label))
        return out

    def kill9(self) -> None:
        """SIGKILL the daemon (a crash: no clean-up runs)."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=20)
        self.close()

    def terminate(self) -> int:
        """SIGTERM and wait; returns the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=30)
        finally:
            self.close()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.sub.close(linger=0)
        self.context.term()
        self._log.close()

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")


def label_windows(endpoint: str, pairs: List[Tuple[Dict[str, Any], str]]) -> List[str]:
    """Label each (window, activity) by window id, one message per run of one activity; acked ids."""
    acked = []
    groups: List[Tuple[str, List[int]]] = []
    for message, activity in pairs:
        if groups and groups[-1][0] == activity and len(groups[-1][1]) < 200:
            groups[-1][1].append(int(message["window_id"]))
        else:
            groups.append((activity, [int(message["window_id"])]))
    for activity, ids in groups:
        request = LabelRequest(uuid.uuid4().hex, activity, window_ids=tuple(ids))
        reply = send_label(request, endpoint, timeout_s=10.0)
        if reply.get("ok"):
            acked.append(request.message_id)
    return acked


def send_and_record(endpoint: str, request: LabelRequest, acked: List[str]) -> bool:
    """Send one label (one attempt); append its id to ``acked`` when the daemon acknowledged it.

    Returns False when the daemon did not answer (killed or gone), True otherwise.
    """
    try:
        reply = send_label(request, endpoint, timeout_s=2.0, attempts=1)
    except LabelClientError:
        return False
    if reply.get("ok"):
        acked.append(request.message_id)
    return True


class LabelFlood(threading.Thread):
    """Send labels for the newest windows in a loop, recording every id that was acknowledged."""

    def __init__(self, daemon: DaemonProcess) -> None:
        super().__init__(daemon=True)
        self.target = daemon
        self.acked: List[str] = []
        self.stop_event = threading.Event()

    def run(self) -> None:
        seen = 0
        while not self.stop_event.is_set():
            pairs = self.target.settled(seen)
            seen = len(self.target.windows)
            for message, activity in pairs:
                request = LabelRequest(uuid.uuid4().hex, activity, window_ids=(int(message["window_id"]),))
                if not send_and_record(self.target.label_endpoint, request, self.acked):
                    return  # the daemon is gone
            time.sleep(0.05)


def accuracy(pairs: List[Tuple[Dict[str, Any], str]]) -> Optional[float]:
    """Share of windows whose published label is the true activity (None when empty)."""
    if not pairs:
        return None
    return sum(m["label"] == truth for m, truth in pairs) / len(pairs)

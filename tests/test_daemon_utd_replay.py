"""UTD-MHAD replayed through the running daemon gives the offline accuracy of the same model.

A small IMU + depth classifier is trained by ``cosmo_edge.training`` (the supervised recipe, short
schedule; cached under ``runs/test-cache`` or ``$COSMO_TEST_CACHE`` so that a second run skips it).
Trials whose inertial recordings are 161 to 165 samples long (3.2-3.3 s at 50 Hz) are replayed back to
back by the simulator through the real IMU and RealSense drivers into ``cosmo-edge run`` (a
subprocess, 2 s of warm-up trials first) with ``window_s`` = the median length and a 40 ms hop; for
each trial the published window that best matches its span is its live prediction. Offline, the
same checkpoint classifies the same trials prepared by the data layer (whole trial resampled),
through the same ONNX Runtime backend. The two accuracies must agree within 1 point.

Why only one length band: the daemon cuts windows of one fixed length, while offline each trial is
resampled as a whole; with equal lengths a window can cover one trial and nothing else.
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
BAND = (161, 165)  # inertial samples at 50 Hz
WARMUP_TRIALS = 2
SPEED = 3.0
HOP_S = 0.04
EPOCHS = 12

pytestmark = [pytest.mark.dataset, pytest.mark.slow]


def _data_root() -> Path:
    root = Path(os.environ.get("COSMO_DATA", REPO.parent / "shared" / "data" / "utd-mhad"))
    if not (root / "Inertial").is_dir() or not (root / "Depth").is_dir():
        pytest.skip(f"UTD-MHAD (Inertial/ and Depth/) not found at {root}; set COSMO_DATA")
    return root


def _cache() -> Path:
    path = Path(os.environ.get("COSMO_TEST_CACHE", REPO / "runs" / "test-cache"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def _inertial_lengths(root: Path, trial_ids):
    import scipy.io

    out = {}
    for trial in trial_ids:
        (_, shape, _), *_ = scipy.io.whosmat(str(root / "Inertial" / f"{trial}_inertial.mat"))
        out[trial] = shape[0]
    return out


def _train_model(ds, path: Path) -> Path:
    """Supervised IMU + depth classifier on subjects 1-6 (the training code's recipe, short)."""
    import torch

    import models.radar  # noqa: F401
    from cosmo_edge.bundled.train import plain_versions
    from cosmo_edge.training.config import RunConfig, apply_overrides
    from cosmo_edge.training.data import prepare_experiment
    from cosmo_edge.training.pipeline import supervised
    from cosmo_edge.training.rundir import save_classifier, start_run

    torch.set_num_threads(2)
    torch.manual_seed(0)
    config = apply_overrides(
        RunConfig(),
        {
            "data.modalities": ["imu", "depth"],
            "data.label_rate": 100.0,
            "supervised.epochs": EPOCHS,
            "supervised.lr_milestones": [8],
            "supervised.eval_every": EPOCHS,
        },
    )
    data = prepare_experiment(ds, config.data, config.seed)
    run_dir = path.parent / "utd-run"
    start_run(run_dir, config, data)
    model, result = supervised(config, data, progress=False)
    checkpoint = save_classifier(run_dir, "supervised", config, data, model, None, result)
    shutil.copyfile(checkpoint, path)
    plain_versions(path)
    return path


def _offline_predictions(model_path: Path, ds, rows, state_dir: Path):
    from cosmo_edge.daemon.predictor import load_predictor

    predictor = load_predictor(model_path, "onnxruntime", cache_dir=state_dir)
    inputs = {m: ds.inputs[m][rows] for m in predictor.modalities}
    if predictor.normalization is not None:
        inputs = predictor.normalization.apply(inputs)
    inputs["present"] = np.ones((len(rows), len(predictor.modalities)), np.float32)
    probs = predictor.backend.predict(inputs)
    return [predictor.label_names[i] for i in probs.argmax(1)]


def _free_endpoint() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"tcp://127.0.0.1:{sock.getsockname()[1]}"


def _daemon_config(tmp_path: Path, model: Path, endpoint: str, window_s: float) -> Path:
    config = {
        "simulator": {"speed": SPEED, "ground_truth_file": str(tmp_path / "truth.jsonl")},
        "sensors": [
            {
                "type": "imu_serial",
                "port": "sim:imu",
                "protocol": "timestamped_text",
                "accel_fs_g": 16,
                "gyro_fs_dps": 2000,
                "nominal_rate_hz": 100,
            },
            {"type": "realsense_depth", "serial_number": "sim:depth", "width": 640, "height": 480, "fps": 30},
        ],
        "timebase": {"min_points": 2},
        "window": {"window_s": window_s, "hop_s": HOP_S, "delay_s": 0.1},
        "model": {"path": str(model), "backend": "onnxruntime"},
        "publish": {"endpoint": endpoint, "hwm": 100000, "queue_size": 10000},
        "state_dir": str(tmp_path / "state"),
    }
    path = tmp_path / "daemon.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def _live_windows(config: Path, trials, root: Path, endpoint: str):
    zmq = pytest.importorskip("zmq")
    from cosmo_edge.publish import unpack_message

    context = zmq.Context()
    sub = context.socket(zmq.SUB)
    sub.setsockopt(zmq.RCVHWM, 100000)
    sub.setsockopt(zmq.SUBSCRIBE, b"activity.window")
    sub.connect(endpoint)
    command = [sys.executable, "-m", "cosmo_edge", "--log-level", "WARNING", "run", "--config", str(config)]
    command += ["--replay-trials", ",".join(trials), "--data-root", str(root)]
    proc = subprocess.Popen(command, cwd=str(REPO), stderr=subprocess.PIPE, text=True)
    windows = []
    try:
        while proc.poll() is None:  # no duration: the daemon ends by itself after the last trial
            while sub.poll(100):
                windows.append(unpack_message(sub.recv_multipart())[1])
        while sub.poll(200):
            windows.append(unpack_message(sub.recv_multipart())[1])
        err = proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(20)
        sub.close(linger=0)
        context.term()
    assert proc.returncode == 0, err[-3000:]
    return windows


def test_replayed_utd_trials_through_the_daemon_match_offline_accuracy(tmp_path):
    pytest.importorskip("pyrealsense2")
    from cosmo_edge.daemon.view import GroundTruth
    from cosmo_edge.datasets import load_utd_mhad

    root, cache = _data_root(), _cache()
    ds = load_utd_mhad(root, modalities=("imu", "depth"), cache_dir=cache / "utd")
    model = cache / f"utd_imu_depth_supervised_e{EPOCHS}.pt"
    if not model.exists():
        _train_model(ds, model)
    lengths = _inertial_lengths(root, ds.trial_ids)
    chosen = [t for t in ds.trial_ids if BAND[0] <= lengths[t] <= BAND[1]]
    warmup = [t for t in ds.trial_ids if t not in chosen][:WARMUP_TRIALS]
    window_s = float(np.median([lengths[t] for t in chosen])) / 50.0
    rows = [ds.trial_ids.index(t) for t in chosen]
    offline = _offline_predictions(model, ds, rows, tmp_path / "offline")
    truth_names = [ds.label_names[ds.labels[r]] for r in rows]

    endpoint = _free_endpoint()
    windows = _live_windows(
        _daemon_config(tmp_path, model, endpoint, window_s), warmup + chosen, root, endpoint
    )
    truth = GroundTruth(tmp_path / "truth.jsonl")
    assert truth.refresh() and len(truth.segments) == len(warmup) + len(chosen)
    starts = np.array([w["window_start_ns"] for w in windows])
    ends = np.array([w["window_end_ns"] for w in windows])
    live, misalign_ms = [], []
    for start, end, _ in truth.segments[len(warmup) :]:
        best = int(np.argmin(np.abs(starts - start) + np.abs(ends - end)))
        live.append(windows[best]["label"])
        misalign_ms.append(max(abs(starts[best] - start), abs(ends[best] - end)) / 1e6 * SPEED)
    live_acc = float(np.mean([p == t for p, t in zip(live, truth_names)]))
    offline_acc = float(np.mean([p == t for p, t in zip(offline, truth_names)]))
    agree = float(np.mean([a == b for a, b in zip(live, offline)]))
    print(
        f"\nUTD-MHAD replay, {len(chosen)} trials ({BAND[0]}-{BAND[1]} inertial samples): live accuracy "
        f"{live_acc:.4f}, offline {offline_acc:.4f}, same prediction on {agree:.3f} of trials, "
        f"window misalignment p90 {np.percentile(misalign_ms, 90):.0f} ms (sensor time)"
    )
    assert abs(live_acc - offline_acc) <= 0.01

"""End to end: a daemon whose model confuses four activities learns them from labels sent over ZeroMQ.

The daemon (a real process on the simulator, ONNX Runtime backend) starts from ``confused_model``
(the bundled model with wave/clap and squat/sit swapped). The test labels the settled windows of the
first pass of the script by window id, a round runs in the background worker, the candidate is
promoted, the backend artifact is rebuilt and swapped in, and the windows published afterwards carry
the new model version. The test prints the accuracy of the windows before and after the swap and
requires it to rise.
"""

import json

import pytest
from finetune_daemon_support import DaemonProcess, accuracy, confused_model, label_windows, write_config

from cosmo_edge.finetune.registry import ModelRegistry

pytest.importorskip("zmq")
pytest.importorskip("pyrealsense2")

ACTIVITIES = ("stand_still", "walk", "wave", "clap", "squat", "sit")
SCRIPT = ",".join(f"{a}:7" for a in ACTIVITIES * 6)  # 6 passes, 252 sensor seconds
SPEED = 3.0
FINETUNE = {"min_new_labels": 30, "epochs": 10, "t_iter_epochs": 5, "isolation": "process"}


@pytest.mark.slow
def test_labels_over_zeromq_promote_a_better_model_and_accuracy_rises(tmp_path):
    model = confused_model(tmp_path / "confused.pt")
    daemon = DaemonProcess(tmp_path, write_config(tmp_path, SCRIPT, SPEED, FINETUNE, model))
    try:
        daemon.pump(20.0)  # about one pass of the script at speed 3
        first = daemon.windows[0]["model_version"] if daemon.windows else None
        labeled = daemon.settled()
        assert len(labeled) >= 30, daemon.log()[-3000:]
        acked = label_windows(daemon.label_endpoint, labeled)
        assert acked, daemon.log()[-3000:]
        swapped_at = None
        for _ in range(60):  # the round, the ONNX export and the swap: well under a minute here
            daemon.pump(1.0)
            versions = [m["model_version"] for m in daemon.windows]
            if versions and versions[-1] != first:
                swapped_at = versions.index(versions[-1])
                break
        assert swapped_at is not None, daemon.log()[-4000:]
        daemon.pump(20.0)
        assert daemon.terminate() == 0
    finally:
        daemon.close()
    pairs = daemon.settled()
    before = [(m, t) for m, t in pairs if m["model_version"] == first]
    after = [(m, t) for m, t in pairs if m["model_version"] != first]
    acc_before, acc_after = accuracy(before), accuracy(after)
    registry = ModelRegistry.in_state_dir(tmp_path / "state")
    promoted = [e for e in registry.history() if e["event"] == "promoted"]
    print(
        f"\naccuracy of settled windows: before fine-tuning {acc_before:.3f} ({len(before)} windows), "
        f"after promotion of {registry.active()} {acc_after:.3f} ({len(after)} windows); "
        f"held-out {json.dumps(promoted[0]['active'])} -> {json.dumps(promoted[0]['candidate'])}"
    )
    assert registry.active() == "v0002" and promoted[0]["parent"] == "v0001"
    assert len(after) >= 20
    assert acc_after > acc_before + 0.2

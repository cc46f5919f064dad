"""``cosmo-edge pretrain`` under torchrun with 2 gloo processes: run directory, then resume."""

import json
import os
import subprocess
import sys

import pytest

from cosmo_edge.training.checkpoint import load_pretrained

pytestmark = pytest.mark.slow

FAST = ["--set", "qom.kmeans_n_init=1", "--set", "qom.hopkins_repeats=1", "--set", "stage1.num_views=4"]


def torchrun_pretrain(out_dir, epochs: int) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    command += ["-m", "cosmo_edge", "pretrain", "--dataset", "synthetic", "--epochs", str(epochs)]
    command += ["--out", str(out_dir), "--no-progress", *FAST]
    env = dict(os.environ, OMP_NUM_THREADS="1", COSMO_DIST_BACKEND="gloo")
    result = subprocess.run(command, capture_output=True, text=True, timeout=180, env=env)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    return result


def test_pretrain_under_torchrun_writes_the_run_and_resumes(tmp_path) -> None:
    first = torchrun_pretrain(tmp_path, epochs=1)
    assert first.stdout.count("checkpoint:") == 1  # printed by rank 0 only
    assert "on 2 processes" in first.stdout
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["distributed"]["processes"] == 2 and metrics["distributed"]["backend"] == "gloo"
    assert metrics["distributed"]["resumed_from_epoch"] == 0
    model, meta = load_pretrained(tmp_path / "stage1.pt")
    assert meta["qom"]["modalities"] == ["imu", "skeleton"] == model.modalities
    assert sum(meta["qom"]["weights"]) == pytest.approx(1.0)
    assert (tmp_path / "stage1_state" / "epoch_00001.pt").is_file()

    torchrun_pretrain(tmp_path, epochs=2)  # same run dir, longer: continues after epoch 1
    resumed = json.loads((tmp_path / "metrics.json").read_text())
    assert resumed["distributed"]["resumed_from_epoch"] == 1
    history = resumed["stage1"]["history"]
    assert [row["epoch"] for row in history] == [1, 2]
    assert history[0] == metrics["stage1"]["history"][0]

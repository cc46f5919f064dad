"""``cosmo-edge pretrain / finetune / evaluate`` end to end on generated data, and on UTD-MHAD."""

import json
import os
import pathlib

import pytest

from cosmo_edge.cli import main

REPO = pathlib.Path(__file__).resolve().parents[1]
FAST = ["--dataset", "synthetic", "--no-progress", "--seed", "1", "--label-rate", "10"]


def utd_root():
    """COSMO_DATA, else ../shared/data/utd-mhad beside the checkout; None when neither exists."""
    candidates = [os.environ.get("COSMO_DATA"), str(REPO.parent / "shared" / "data" / "utd-mhad")]
    for candidate in candidates:
        if candidate and (pathlib.Path(candidate) / "Inertial").is_dir():
            return candidate
    return None


def test_pretrain_finetune_evaluate(tmp_path, capsys) -> None:
    run = tmp_path / "run"
    quick_qom = ["--set", "qom.kmeans_n_init=1", "--set", "stage1.batch_size=32"]
    assert main(["pretrain", *FAST, "--epochs", "2", "--out", str(run), *quick_qom]) == 0
    for name in ("config.json", "split.json", "stage1.pt", "qom.json", "metrics.json"):
        assert (run / name).is_file(), name
    qom = json.loads((run / "qom.json").read_text())
    assert len(qom["weights"]) == 2 and "hopkins" in qom
    quick = ["--set", "stage2.eval_every=2"]
    assert (
        main(
            [
                "finetune",
                "--pretrained",
                str(run / "stage1.pt"),
                *FAST,
                "--epochs",
                "4",
                "--out",
                str(run),
                *quick,
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "stage2: test accuracy" in out and "selected on validation" in out
    metrics = json.loads((run / "metrics.json").read_text())
    assert {"stage1", "qom", "stage2"} <= set(metrics)
    assert "test" in metrics["stage2"]["last_epoch"]
    assert main(["evaluate", "--checkpoint", str(run / "classifier.pt"), "--out", str(run)]) == 0
    assert "test accuracy" in capsys.readouterr().out
    accuracy = json.loads((run / "metrics.json").read_text())["evaluate"]["accuracy"]
    assert accuracy == pytest.approx(metrics["stage2"]["last_epoch"]["test"]["accuracy"])


def test_from_scratch_baseline(tmp_path, capsys) -> None:
    out = tmp_path / "baseline"
    assert main(["finetune", "--from-scratch", *FAST, "--epochs", "2", "--out", str(out)]) == 0
    assert (out / "supervised.pt").is_file()
    assert "supervised: test accuracy" in capsys.readouterr().out


def test_missing_data_root_is_one_line(tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.delenv("COSMO_DATA", raising=False)
    assert main(["pretrain", "--dataset", "utd-mhad", "--out", str(tmp_path)]) == 2
    assert "COSMO_DATA" in capsys.readouterr().out


def test_bad_checkpoint_is_reported(tmp_path, capsys) -> None:
    bad = tmp_path / "x.pt"
    bad.write_bytes(b"not a checkpoint")
    assert main(["evaluate", "--checkpoint", str(bad)]) == 2
    assert "cosmo-edge evaluate" in capsys.readouterr().out


@pytest.mark.dataset
@pytest.mark.slow
def test_real_loader_path_on_utd_mhad(tmp_path) -> None:
    root = utd_root()
    if root is None:
        pytest.skip("UTD-MHAD not found (set COSMO_DATA or place it at ../shared/data/utd-mhad)")
    from cosmo_edge.training.config import RunConfig, apply_overrides
    from cosmo_edge.training.data import load_dataset, prepare_experiment

    config = apply_overrides(RunConfig(), {"data.data_root": root, "data.label_rate": 5})
    data = prepare_experiment(load_dataset(config.data), config.data, seed=0)
    sizes = {name: len(split[1]) for name, split in data.splits.items()}
    assert sizes == {"labeled": 27, "unlabeled": 513, "validation": 106, "test": 215}
    assert data.splits["labeled"][0]["imu"].shape == (27, 120, 6)
    assert abs(float(data.splits["unlabeled"][0]["imu"].mean())) < 0.2  # z-scored on the training pool
    run = tmp_path / "utd"
    args = ["--data-root", root, "--label-rate", "5", "--no-progress", "--out", str(run)]
    fast = ["--set", "qom.kmeans_n_init=1", "--set", "qom.k_max=6"]
    assert main(["pretrain", *args, "--epochs", "1", *fast]) == 0
    assert main(["finetune", "--pretrained", str(run / "stage1.pt"), *args, "--epochs", "2"]) == 0
    metrics = json.loads((run / "metrics.json").read_text())
    assert 0.0 <= metrics["stage2"]["last_epoch"]["test"]["accuracy"] <= 1.0


def test_demo_prints_both_models(tmp_path, capsys, monkeypatch) -> None:
    import cosmo_edge.commands.demo as demo

    short = {"stage1.epochs": 2, "stage2.epochs": 2, "supervised.epochs": 2, "qom.kmeans_n_init": 1}
    monkeypatch.setattr(demo, "DEMO_OVERRIDES", dict(demo.DEMO_OVERRIDES, **short))
    assert main(["demo", "--no-progress", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "Cosmo (stage 1 + 2)" in out and "supervised, same model" in out and "QoM weights" in out
    assert (tmp_path / "classifier.pt").is_file() and (tmp_path / "supervised.pt").is_file()

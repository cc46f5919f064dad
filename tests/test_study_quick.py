"""The accuracy study end to end in --quick mode on generated data, and its USC-HAD data path."""

import json
import pathlib
import sys

import numpy as np
import pytest
from scipy.io import savemat

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

import accuracy  # noqa: E402
import accuracy_tasks  # noqa: E402

METHOD_ROWS = ("cosmo", "supervised", "attnsense", "deepsense", "cmc", "cpc", "singlemodal-imu")


@pytest.mark.slow
def test_quick_study_writes_report_plots_and_resumes(tmp_path: pathlib.Path) -> None:
    args = ["--dataset", "synthetic", "--quick", "--out-dir", str(tmp_path), "--views", "3"]
    args += ["--unlabeled-fractions", "0.5", "--rates", "5,10,20"]
    assert accuracy.main(args) == 0
    stem = tmp_path / "synthetic_imu-skeleton_study_quick"
    md = stem.with_suffix(".md").read_text(encoding="utf-8")
    table = md.split("## Test accuracy (%), last epoch")[1].split("##")[0]
    for name in (*METHOD_ROWS, "singlemodal-skeleton"):
        assert f"| {name} |" in table, name
    assert "| 5 % | 10 % |" in table and "20 %" not in table  # --quick keeps two rates
    ablations = md.split("## Ablations")[1].split("##")[0]
    for name in ("no-qom", "no-alternation", "sum-attn", "fixed-weights", "P=3"):
        assert f"| {name} | 10 % |" in ablations, name
    assert "| 0.5 |" in md and "| 1 |" in md
    for suffix in ("_rates.png", "_convergence.png", "_unlabeled.png"):
        assert (tmp_path / (stem.name + suffix)).stat().st_size > 1000, suffix
    record = json.loads(stem.with_suffix(".json").read_text(encoding="utf-8"))
    assert {t["seed"] for t in record["tasks"]} == {0} and record["run"]["resumed"] == 0
    for task in record["tasks"]:
        for row in task["rows"]:
            assert 0.0 <= row["test_accuracy"] <= 1.0 and "valsel_test_accuracy" in row
    assert accuracy.main([*args, "--report-only"]) == 0
    again = json.loads(stem.with_suffix(".json").read_text(encoding="utf-8"))
    assert again["run"]["resumed"] == again["run"]["tasks"] == len(record["tasks"])


def fake_usc(root: pathlib.Path) -> pathlib.Path:
    """Pool subjects 1-2, validation 11, test 13; activities 1, 2 and 8; two trials of 4 windows."""
    for s in (1, 2, 11, 13):
        folder = root / f"Subject{s}"
        folder.mkdir(parents=True)
        for a in (1, 2, 8):
            for t in (1, 2):
                rng = np.random.default_rng(100 * s + 10 * a + t)
                readings = rng.normal(size=(500, 6)) + a
                savemat(folder / f"a{a}t{t}.mat", {"activity_number": str(a), "sensor_readings": readings})
    return root


def test_usc_had_experiment_trains_with_sum_fusion(tmp_path: pathlib.Path) -> None:
    from cosmo_edge.training.baselines import finetune_method

    root = fake_usc(tmp_path / "usc")
    task = {"dataset": "usc-had", "pair": "acc,gyro", "rate": 50.0, "seed": 0, "data_root": str(root)}
    task["cache_dir"] = None
    task["settings"] = {"model.fusion_op": "sum", "supervised.epochs": 1, "supervised.eval_every": 1}
    task["settings"].update({f"model.encoders.{m}.channels": [8, 8] for m in ("acc", "gyro")})
    config = accuracy_tasks.task_config(task)
    data = accuracy_tasks.experiment(task, config)
    assert data.input_shapes == {"acc": (200, 3), "gyro": (200, 3)}
    assert set(data.subjects["validation"]) == {11} and set(data.subjects["test"]) == {13}
    assert set(data.subjects["labeled"]) | set(data.subjects["unlabeled"]) == {1, 2}
    model, result = finetune_method("supervised", config, data, progress=False)
    assert model.fusion.fusion_op == "sum"
    assert len(result["last"]["test"]["confusion"]) == 12

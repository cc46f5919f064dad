"""Resuming stage 1 from the run directory repeats an uninterrupted run exactly (one process here)."""

import pytest
import torch
from distributed_support import SEED, training_setup

from cosmo_edge.training.distributed import DistContext
from cosmo_edge.training.stage1_distributed import CheckpointOptions, train_stage1_distributed
from cosmo_edge.training.stage1_resume import ResumeError, fingerprint_of, read_state, state_files

FINGERPRINT = {"seed": SEED, "stage1": {"epochs": 3, "lr": 0.05}, "data": {"data_root": "/a"}}


def run(epochs: int, run_dir, fingerprint=None, keep_last: int = 2):
    model, inputs, config, _ = training_setup(dropout=0.2)  # dropout on: its RNG must resume too
    config.epochs = epochs
    options = CheckpointOptions(run_dir=run_dir, fingerprint=fingerprint or FINGERPRINT, keep_last=keep_last)
    history = train_stage1_distributed(
        model, inputs, config, SEED, DistContext.single(), options, progress=False
    )
    return model.state_dict(), history, options


def test_interrupted_then_resumed_run_equals_uninterrupted_run(tmp_path) -> None:
    straight_state, straight_history, _ = run(3, tmp_path / "straight")
    run(2, tmp_path / "resumed")  # "interrupted" after epoch 2
    state, history, options = run(3, tmp_path / "resumed")
    assert options.resumed_from_epoch == 2
    assert [row["epoch"] for row in history] == [1, 2, 3]
    assert [row["loss"] for row in history] == [row["loss"] for row in straight_history]
    for key, value in straight_state.items():
        assert torch.equal(state[key], value), key


def test_state_files_are_pruned_and_load_weights_only(tmp_path) -> None:
    run(3, tmp_path, keep_last=2)
    files = state_files(tmp_path)
    assert [epoch for epoch, _ in files] == [2, 3]
    state = read_state(files[-1][1])  # torch.load(weights_only=True) inside
    assert state["epoch"] == 3 and len(state["history"]) == 3 and state["world_size"] == 1
    assert "momentum_buffer" in next(iter(state["optimiser"]["state"].values()))


def test_finished_run_resumes_without_training(tmp_path) -> None:
    _, first, _ = run(2, tmp_path)
    _, again, options = run(2, tmp_path)
    assert options.resumed_from_epoch == 2 and again == first


def test_resume_with_another_config_is_refused(tmp_path) -> None:
    run(1, tmp_path)
    other = {"seed": SEED, "stage1": {"epochs": 3, "lr": 0.1}, "data": {"data_root": "/a"}}
    with pytest.raises(ResumeError, match=r"stage1\.lr"):
        run(2, tmp_path, fingerprint=other)


def test_fingerprint_ignores_epochs_and_data_paths() -> None:
    a = {
        "seed": 0,
        "stage1": {"epochs": 3, "lr": 0.1},
        "data": {"data_root": "/a", "cache_dir": None, "x": 1},
    }
    b = {
        "seed": 0,
        "stage1": {"epochs": 9, "lr": 0.1},
        "data": {"data_root": "/b", "cache_dir": "/c", "x": 1},
    }
    assert fingerprint_of(a) == fingerprint_of(b)
    assert fingerprint_of(a) != fingerprint_of(dict(b, seed=1))

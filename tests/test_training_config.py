"""Run configuration: round trip, unknown keys named, dotted overrides, augmentations, metrics."""

import json

import numpy as np
import pytest
import torch

from cosmo_edge.training.augment import AugmentConfig, augment_batch, rotation_matrices, time_crop_resample
from cosmo_edge.training.config import ConfigError, RunConfig, apply_overrides
from cosmo_edge.training.metrics import classification_metrics, macro_f1


def test_round_trip_through_json() -> None:
    config = apply_overrides(RunConfig(), {"stage1.epochs": 7, "model.encoders.imu.channels": [8, 8]})
    again = RunConfig.from_dict(json.loads(json.dumps(config.to_dict())))
    assert again == config
    assert again.stage1.epochs == 7 and again.model.encoders == {"imu": {"channels": [8, 8]}}
    assert isinstance(again.stage1.augment, AugmentConfig)


def test_unknown_keys_are_named() -> None:
    with pytest.raises(ConfigError, match="stage1.epoch"):
        RunConfig.from_dict({"stage1": {"epoch": 3}})
    with pytest.raises(ConfigError, match="stage2.augment.jitter"):
        apply_overrides(RunConfig(), {"stage2.augment.jitter": 0.1})


def test_supervised_defaults_train_jointly() -> None:
    config = RunConfig()
    assert config.supervised.alternation == "joint"
    assert config.stage2.alternation == "iterative"


def test_crop_of_the_whole_window_is_identity() -> None:
    x = torch.randn(3, 40, 20, 3)
    out = time_crop_resample(x, torch.zeros(3), torch.ones(3))
    assert torch.allclose(out, x, atol=1e-5)
    half = time_crop_resample(torch.arange(5.0).view(1, 5, 1), torch.zeros(1), torch.full((1,), 0.5))
    assert torch.allclose(half.flatten(), torch.tensor([0.0, 0.5, 1.0, 1.5, 2.0]))


def test_augmentations_keep_shapes_and_geometry() -> None:
    generator = torch.Generator().manual_seed(0)
    batch = {
        "imu": torch.randn(4, 120, 6),
        "skeleton": torch.randn(4, 40, 20, 3),
        "depth": torch.rand(4, 8, 6, 8),
    }
    batch["depth"][:, :, :2] = 0.0
    out = augment_batch(batch, AugmentConfig(), generator)
    assert {m: o.shape for m, o in out.items()} == {m: b.shape for m, b in batch.items()}
    assert (out["depth"][:, :, :2] == 0).all()  # background stays background
    assert not torch.allclose(out["imu"], batch["imu"])
    assert augment_batch(batch, AugmentConfig(enabled=False), generator) is batch
    rotation = rotation_matrices(torch.tensor([0.3]), axis=1)[0]
    assert torch.allclose(rotation @ rotation.t(), torch.eye(3), atol=1e-6)
    assert torch.allclose(rotation[1], torch.tensor([0.0, 1.0, 0.0]))  # vertical axis unchanged


def test_metrics() -> None:
    labels = np.array([0, 0, 1, 1, 2, 2])
    predictions = np.array([0, 0, 1, 0, 2, 1])
    metrics = classification_metrics(labels, predictions, 3)
    assert metrics["accuracy"] == pytest.approx(4 / 6)
    f1 = [2 * 2 / (3 + 2), 2 * 1 / (2 + 2), 2 * 1 / (1 + 2)]
    assert metrics["macro_f1"] == pytest.approx(np.mean(f1))
    assert np.array(metrics["confusion"]).sum() == 6
    assert macro_f1(np.zeros((3, 3), dtype=np.int64)) == 0.0

"""Stage 1 on small generated data: the loss falls, features come out per modality, QoM runs."""

import numpy as np
import pytest
import torch
from torch import nn

from cosmo_edge.training import pipeline
from cosmo_edge.training.config import RunConfig, Stage1Config, apply_overrides
from cosmo_edge.training.contrastive import loss_floor
from cosmo_edge.training.data import load_dataset, prepare_experiment
from cosmo_edge.training.stage1 import extract_features, multistep_lr, train_stage1
from models.cosmo import CosmoPretrainModel
from models.encoders import build_encoder

SHAPES = {"imu": (24, 6), "skeleton": (8, 20, 3)}


def tiny_model() -> CosmoPretrainModel:
    torch.manual_seed(0)
    encoders = nn.ModuleDict(
        {m: build_encoder(m, s, channels=[16, 16], kernel_size=3) for m, s in SHAPES.items()}
    )
    return CosmoPretrainModel(encoders, proj_dim=16, head_hidden=32)


def paired_inputs(n: int = 32) -> dict:
    """Both modalities are noisy functions of one latent per sample, so they can be aligned."""
    generator = torch.Generator().manual_seed(0)
    latent = torch.randn(n, 1, 1, generator=generator)
    imu = latent * torch.ones(n, 24, 6) + 0.3 * torch.randn(n, 24, 6, generator=generator)
    skeleton = latent.unsqueeze(-1) * torch.ones(n, 8, 20, 3) + 0.3 * torch.randn(
        n, 8, 20, 3, generator=generator
    )
    return {"imu": imu, "skeleton": skeleton}


@pytest.mark.parametrize("copies", [1, 2])
def test_loss_falls_and_stays_above_the_floor(copies: int) -> None:
    model = tiny_model()
    config = Stage1Config(
        epochs=6, batch_size=16, num_views=4, lr=0.05, lr_milestones=[], augment_copies=copies
    )
    history = train_stage1(model, paired_inputs(), config, seed=0, progress=False)
    assert len(history) == 6
    assert history[-1]["loss"] < history[0]["loss"]
    assert all(row["loss"] >= loss_floor(4) - 1e-6 for row in history)


def test_extract_features_kinds() -> None:
    model = tiny_model()
    inputs = paired_inputs(10)
    encoder = extract_features(model, inputs, "encoder")
    assert {m: f.shape for m, f in encoder.items()} == {"imu": (10, 32), "skeleton": (10, 32)}
    projection = extract_features(model, inputs, "projection")
    assert np.allclose(np.linalg.norm(projection["imu"], axis=1), 1.0, atol=1e-5)
    assert extract_features(model, inputs, "raw")["skeleton"].shape == (10, 8 * 20 * 3)
    with pytest.raises(ValueError):
        extract_features(model, inputs, "logits")


def test_multistep_lr() -> None:
    assert multistep_lr(0.01, [100, 200], 0.9, 100) == pytest.approx(0.01)
    assert multistep_lr(0.01, [100, 200], 0.9, 101) == pytest.approx(0.009)
    assert multistep_lr(0.01, [100, 200], 0.9, 300) == pytest.approx(0.0081)


def test_pretrain_on_synthetic_data_never_sees_labels() -> None:
    config = apply_overrides(
        RunConfig(),
        {"data.dataset": "synthetic", "stage1.epochs": 2, "stage1.batch_size": 32, "qom.kmeans_n_init": 1},
    )
    data = prepare_experiment(load_dataset(config.data), config.data, config.seed)
    unlabeled_inputs, unlabeled_labels = data.splits["unlabeled"]
    unlabeled_labels.fill_(-1)  # a stage that read these would crash or learn nonsense
    result = pipeline.pretrain(config, data, progress=False)
    assert len(result.history) == 2
    assert result.qom["modalities"] == ["imu", "skeleton"]
    assert sum(result.qom["weights"]) == pytest.approx(1.0)
    assert result.qom["recipe"]["silhouette"] == "cross-subject"

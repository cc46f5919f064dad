"""Iterative fusion learning: block schedule, real freezing, BatchNorm-safe batches, baseline."""

import numpy as np
import pytest
import torch
from torch import nn

from cosmo_edge.training.batching import batch_indices
from cosmo_edge.training.config import Stage2Config
from cosmo_edge.training.stage2 import apply_phase, phase_for_epoch, train_fusion_classifier
from cosmo_edge.training.supervised import train_supervised
from models.classifier import FusionClassifier
from models.encoders import build_encoder

SHAPES = {"imu": (24, 6), "skeleton": (8, 20, 3)}


def small_model(seed: int = 0) -> FusionClassifier:
    torch.manual_seed(seed)
    encoders = nn.ModuleDict(
        {m: build_encoder(m, s, channels=[8, 8], kernel_size=3) for m, s in SHAPES.items()}
    )
    return FusionClassifier(encoders, 3, [0.4, 0.6], hidden_dim=16)


def toy_split(n: int = 13, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % 3
    inputs = {
        m: torch.randn((n,) + s, generator=generator) + labels.view(-1, *[1] * len(s))
        for m, s in SHAPES.items()
    }
    return inputs, labels


def snapshot(module: nn.Module) -> dict:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def changed(before: dict, module: nn.Module) -> bool:
    return any(not torch.equal(before[k], v) for k, v in module.state_dict().items())


def test_block_schedule() -> None:
    phases = [phase_for_epoch(e, 5) for e in range(1, 21)]
    assert phases == ["encoders"] * 5 + ["classifier"] * 5 + ["encoders"] * 5 + ["classifier"] * 5
    assert phase_for_epoch(1, 5, first_phase="classifier") == "classifier"
    assert phase_for_epoch(6, 5, first_phase="classifier") == "encoders"
    assert phase_for_epoch(3, 5, alternation="joint") == "joint"
    with pytest.raises(ValueError):
        phase_for_epoch(1, 5, first_phase="heads")


def test_frozen_part_is_really_frozen() -> None:
    model = small_model()
    assert apply_phase(model, "classifier", "iterative") == (False, True)
    assert all(not p.requires_grad for p in model.encoder_parameters())
    assert all(p.requires_grad for p in model.classifier_parameters())
    assert not model.encoders.training and model.head.training
    assert apply_phase(model, "encoders", "iterative") == (True, False)
    assert all(p.requires_grad for p in model.encoder_parameters())
    assert all(not p.requires_grad for p in model.classifier_parameters())
    assert model.encoders.training and not model.head.training


@pytest.mark.parametrize("first_phase", ["encoders", "classifier"])
def test_one_block_moves_only_the_active_part(first_phase: str) -> None:
    model = small_model()
    encoders_before, head_before = snapshot(model.encoders), snapshot(model.head)
    fusion_before = snapshot(model.fusion)
    config = Stage2Config(epochs=2, t_iter=2, batch_size=4, first_phase=first_phase, eval_every=1)
    train_fusion_classifier(model, toy_split(), config, seed=0, progress=False)
    # Encoder block: encoders (weights and BN statistics) move, fusion + head do not; and vice versa.
    assert changed(encoders_before, model.encoders) == (first_phase == "encoders")
    assert changed(head_before, model.head) == (first_phase == "classifier")
    assert changed(fusion_before, model.fusion) == (first_phase == "classifier")


def test_alternation_moves_both_parts_over_two_blocks() -> None:
    model = small_model()
    encoders_before, head_before = snapshot(model.encoders), snapshot(model.head)
    config = Stage2Config(epochs=4, t_iter=2, batch_size=4, eval_every=2)
    result = train_fusion_classifier(
        model, toy_split(), config, seed=0, eval_sets={"validation": toy_split(9, 1)}, progress=False
    )
    assert changed(encoders_before, model.encoders) and changed(head_before, model.head)
    assert [row["epoch"] for row in result["history"]] == [2, 4]
    assert result["val_selected"]["epoch"] in (2, 4)
    assert 0.0 <= result["last"]["validation"]["accuracy"] <= 1.0


def test_reference_alternation_steps_both_parts_every_epoch() -> None:
    model = small_model()
    head_before = snapshot(model.head)
    config = Stage2Config(epochs=1, t_iter=5, batch_size=4, alternation="reference", first_phase="encoders")
    train_fusion_classifier(model, toy_split(), config, seed=0, progress=False)
    assert changed(head_before, model.head)  # first block is "encoders", yet the head learned


def test_supervised_baseline_trains_jointly_and_learns() -> None:
    model = small_model()
    train, evaluation = toy_split(30, 0), toy_split(30, 1)
    config = Stage2Config(epochs=30, batch_size=8, lr_encoders=0.01, eval_every=30)
    result = train_supervised(
        model, train, config, seed=0, eval_sets={"validation": evaluation}, progress=False
    )
    assert result["last"]["validation"]["accuracy"] > 0.6  # chance is 1/3


def test_training_is_reproducible_for_a_seed() -> None:
    config = Stage2Config(epochs=3, t_iter=1, batch_size=4, eval_every=3)
    results = []
    for _ in range(2):
        model = small_model(seed=3)
        train_fusion_classifier(model, toy_split(), config, seed=7, progress=False)
        results.append(snapshot(model))
    assert all(torch.equal(results[0][k], results[1][k]) for k in results[0])


@pytest.mark.parametrize("n,batch", [(27, 16), (81, 16), (513, 32), (17, 16), (2, 16), (33, 16)])
def test_batches_never_have_size_one(n: int, batch: int) -> None:
    batches = batch_indices(n, batch, np.random.default_rng(0))
    assert min(len(b) for b in batches) >= 2
    assert sorted(np.concatenate(batches).tolist()) == list(range(n))


def test_batching_rejects_impossible_requests() -> None:
    with pytest.raises(ValueError):
        batch_indices(1, 16)
    with pytest.raises(ValueError):
        batch_indices(10, 1)


def test_frozen_encoder_batchnorm_keeps_stage1_statistics() -> None:
    model = small_model()
    stats_before = {k: v.clone() for k, v in model.encoders.state_dict().items() if "running" in k}
    weights_before = {k: v.clone() for k, v in model.encoders.state_dict().items() if "running" not in k}
    config = Stage2Config(epochs=2, t_iter=2, batch_size=4, encoder_bn="frozen", first_phase="encoders")
    train_fusion_classifier(model, toy_split(), config, seed=0, progress=False)
    state = model.encoders.state_dict()
    assert all(torch.equal(stats_before[k], state[k]) for k in stats_before)
    assert any(not torch.equal(weights_before[k], state[k]) for k in weights_before)

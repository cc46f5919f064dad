"""Attention fusion with QoM blend, modality masking, fusion operators, the stage-1 model."""

import pytest
import torch
from torch import nn

from models.classifier import FusionClassifier, build_fusion_classifier
from models.cosmo import CosmoPretrainModel
from models.encoders import build_encoder
from models.fusion import AttentionFusion, blend_with_qom, masked_softmax

SHAPES = {"imu": (120, 6), "skeleton": (40, 20, 3)}


def make_model(**kwargs) -> FusionClassifier:
    torch.manual_seed(0)
    encoders = nn.ModuleDict({m: build_encoder(m, s) for m, s in SHAPES.items()})
    return FusionClassifier(encoders, 5, kwargs.pop("qom", [0.3, 0.7]), **kwargs)


def inputs(n: int = 4) -> dict:
    generator = torch.Generator().manual_seed(1)
    return {m: torch.randn((n,) + s, generator=generator) for m, s in SHAPES.items()}


def test_blend_follows_lambda() -> None:
    attn = torch.tensor([[0.9, 0.1], [0.2, 0.8]])
    qom = torch.tensor([0.3, 0.7])
    assert torch.allclose(blend_with_qom(attn, qom, 0.0, None), attn)
    assert torch.allclose(blend_with_qom(attn, qom, 1.0, None), qom.expand(2, 2))
    mixed = blend_with_qom(attn, qom, 0.8, None)
    assert torch.allclose(mixed, 0.2 * attn + 0.8 * qom)
    assert torch.allclose(mixed.sum(-1), torch.ones(2))


def test_weights_on_simplex_and_output_shapes() -> None:
    model = make_model().eval()
    beta = model.modality_weights(inputs())
    assert beta.shape == (4, 2)
    assert torch.allclose(beta.sum(-1), torch.ones(4), atol=1e-6)
    assert (beta >= 0).all()
    # With lambda = 0.8 the QoM prior bounds the weights: beta_j >= 0.8 * q_j.
    assert (beta[:, 1] >= 0.8 * 0.7 - 1e-6).all()
    assert model(inputs()).shape == (4, 5)


def test_absent_modality_gets_zero_weight_and_its_input_is_ignored() -> None:
    model = make_model().eval()
    x = inputs()
    present = torch.tensor([[1, 1], [1, 0], [0, 1], [1, 0]], dtype=torch.bool)
    beta = model.modality_weights(x, present)
    assert beta[1, 1] == 0 and beta[2, 0] == 0 and beta[3, 1] == 0
    assert torch.allclose(beta.sum(-1), torch.ones(4), atol=1e-6)
    logits = model(x, present)
    corrupted = dict(x, skeleton=x["skeleton"] * 100 + 5)  # garbage where skeleton is absent
    logits_corrupted = model(corrupted, present)
    assert torch.allclose(logits[[1, 3]], logits_corrupted[[1, 3]], atol=1e-5)
    assert not torch.allclose(logits[[0, 2]], logits_corrupted[[0, 2]])


def test_masked_softmax_handles_an_empty_row() -> None:
    weights = masked_softmax(torch.randn(2, 3), torch.tensor([[0, 0, 0], [1, 0, 1]]))
    assert torch.equal(weights[0], torch.zeros(3))
    assert weights[1, 1] == 0 and torch.isclose(weights[1].sum(), torch.tensor(1.0))


def test_sum_operator_needs_equal_widths() -> None:
    fusion = AttentionFusion([8, 8], [0.5, 0.5], fusion_op="sum")
    fused, beta = fusion([torch.ones(3, 8), 2 * torch.ones(3, 8)])
    assert fused.shape == (3, 8)
    assert torch.allclose(fused, beta[:, :1] * 1 + beta[:, 1:] * 2)
    with pytest.raises(ValueError, match="equal feature widths"):
        AttentionFusion([8, 4], [0.5, 0.5], fusion_op="sum")
    with pytest.raises(ValueError):
        AttentionFusion([8, 8], [1.0], fusion_op="concat")


def test_model_args_rebuild_the_same_architecture() -> None:
    model = make_model(hidden_dim=64, qom_lambda=0.5)
    rebuilt = build_fusion_classifier(model.model_args())
    rebuilt.load_state_dict(model.state_dict())
    model.eval()
    rebuilt.eval()
    x = inputs()
    assert torch.allclose(model(x), rebuilt(x))
    assert rebuilt.model_args() == model.model_args()


def test_parameter_groups_partition_the_model() -> None:
    model = make_model()
    encoder_ids = {id(p) for p in model.encoder_parameters()}
    classifier_ids = {id(p) for p in model.classifier_parameters()}
    assert not encoder_ids & classifier_ids
    assert encoder_ids | classifier_ids == {id(p) for p in model.parameters()}


def test_pretrain_model_gives_unit_projections() -> None:
    encoders = nn.ModuleDict({m: build_encoder(m, s) for m, s in SHAPES.items()})
    model = CosmoPretrainModel(encoders, proj_dim=32, head_hidden=64)
    r = model(inputs())
    assert r.shape == (4, 2, 32)
    assert torch.allclose(r.norm(dim=-1), torch.ones(4, 2), atol=1e-5)
    with pytest.raises(ValueError):
        CosmoPretrainModel(nn.ModuleDict({"imu": encoders["imu"]}))

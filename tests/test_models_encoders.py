"""Encoders: shapes, registry, the depth split into per-frame and temporal parts, size and FLOPs."""

import pytest
import torch
from torch import nn

from cosmo_edge.training.profile import classifier_profile, count_flops, example_inputs, hook_flops
from models.classifier import FusionClassifier
from models.encoders import ENCODER_REGISTRY, build_encoder, count_parameters, register_encoder

SHAPES = {"imu": (120, 6), "skeleton": (40, 20, 3), "depth": (40, 60, 80)}


@pytest.mark.parametrize("modality", sorted(SHAPES))
def test_encoder_output_shape_and_feature_dim(modality: str) -> None:
    encoder = build_encoder(modality, SHAPES[modality])
    out = encoder(torch.rand((3,) + SHAPES[modality]))
    assert out.shape == (3, encoder.feature_dim)
    assert isinstance(encoder.feature_dim, int)
    assert encoder.build_spec == {"input_shape": list(SHAPES[modality]), "options": {}}


@pytest.mark.parametrize(
    "modality,shape", [("imu", (200, 6)), ("skeleton", (64, 20, 3)), ("depth", (16, 48, 64))]
)
def test_other_window_lengths_work_without_code_changes(modality: str, shape: tuple) -> None:
    encoder = build_encoder(modality, shape)
    assert encoder(torch.rand((2,) + shape)).shape == (2, encoder.feature_dim)


def test_options_change_the_architecture() -> None:
    small = build_encoder("imu", (120, 6), channels=[16, 32], kernel_size=3)
    assert small.feature_dim == 64
    assert count_parameters(small) < count_parameters(build_encoder("imu", (120, 6)))


def test_depth_encoder_splits_into_frame_and_temporal_parts() -> None:
    encoder = build_encoder("depth", SHAPES["depth"]).eval()
    clip = torch.rand(2, 40, 60, 80)
    per_frame = encoder.frame_features(clip)
    assert per_frame.shape == (2, 40, encoder.frame_dim)
    # Per-frame work does not mix frames: one frame alone gives the same vector (cacheable).
    single = encoder.frame_features(clip[:, 7:8])
    assert torch.allclose(single[:, 0], per_frame[:, 7], atol=1e-5)
    assert torch.allclose(encoder.temporal(per_frame), encoder(clip), atol=1e-5)
    strided = build_encoder("depth", SHAPES["depth"], frame_stride=2, input_pool=4).eval()
    every_other = strided.frame_features(clip[:, :: strided.frame_stride])
    assert every_other.shape[1] == 20
    assert torch.allclose(strided.temporal(every_other), strided(clip), atol=1e-5)


def test_registry_is_extensible_and_rejects_unknown_or_duplicate() -> None:
    class Dummy(nn.Module):
        def __init__(self, input_shape, width: int = 4) -> None:
            super().__init__()
            self.feature_dim = width
            self.linear = nn.Linear(input_shape[-1], width)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.linear(x).mean(dim=1)

    register_encoder("test-dummy", Dummy)
    try:
        encoder = build_encoder("test-dummy", (5, 3), width=7)
        assert encoder(torch.rand(2, 5, 3)).shape == (2, 7)
        with pytest.raises(ValueError):
            register_encoder("test-dummy", Dummy)
    finally:
        del ENCODER_REGISTRY["test-dummy"]
    with pytest.raises(KeyError, match="no encoder registered"):
        build_encoder("sonar", (3,))


def test_stage2_model_is_edge_sized() -> None:
    for modalities in (("imu", "skeleton"), ("imu", "depth"), ("imu", "skeleton", "depth")):
        encoders = nn.ModuleDict({m: build_encoder(m, SHAPES[m]) for m in modalities})
        model = FusionClassifier(encoders, 27, [1.0 / len(modalities)] * len(modalities))
        assert count_parameters(model) < 1_000_000


def test_flop_counters_agree_and_scale_with_input() -> None:
    encoders = nn.ModuleDict({m: build_encoder(m, SHAPES[m]) for m in ("imu", "skeleton")})
    model = FusionClassifier(encoders, 27, [0.5, 0.5]).eval()
    inputs = example_inputs({m: SHAPES[m] for m in ("imu", "skeleton")})
    assert count_flops(model, inputs) == hook_flops(model, inputs)
    conv = nn.Conv1d(6, 8, 5, padding=2)
    assert hook_flops(conv, torch.rand(1, 6, 10)) == 2 * 6 * 5 * 8 * 10
    profile = classifier_profile(model, {m: SHAPES[m] for m in ("imu", "skeleton")})
    assert profile["parameters"] == count_parameters(model)
    assert profile["flops_per_sample"] > sum(e["flops_per_sample"] for e in profile["encoders"].values())

"""Shared builders for the runtime tests: the real FusionClassifier in the contract's shapes."""

from typing import Dict, Sequence, Tuple

import torch
from torch import nn

import models.radar  # noqa: F401  (registers the "radar" encoder)
from cosmo_edge.runtime.artifacts import ModelArtifact, artifact_from_module
from models.classifier import FusionClassifier
from models.encoders import build_encoder

SHAPES: Dict[str, Tuple[int, ...]] = {
    "imu": (120, 6),
    "skeleton": (40, 20, 3),
    "depth": (40, 60, 80),
    "radar": models.radar.INPUT_SHAPE,
}
ALL_MODALITIES = ("imu", "skeleton", "depth", "radar")


def build_classifier(
    modalities: Sequence[str] = ALL_MODALITIES, num_classes: int = 5, seed: int = 0
) -> nn.Module:
    """The real classifier in eval mode, with random weights and non-trivial BatchNorm statistics."""
    torch.manual_seed(seed)
    encoders = nn.ModuleDict({m: build_encoder(m, SHAPES[m]) for m in modalities})
    weights = [1.0 / len(modalities)] * len(modalities)
    model = FusionClassifier(encoders, num_classes, weights)
    generator = torch.Generator().manual_seed(seed)
    for module in model.modules():
        if isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
            module.running_mean.copy_(torch.rand(module.running_mean.shape, generator=generator) - 0.5)
            module.running_var.copy_(torch.rand(module.running_var.shape, generator=generator) + 0.5)
    return model.eval()


def build_artifact(
    modalities: Sequence[str] = ALL_MODALITIES, num_classes: int = 5, seed: int = 0
) -> ModelArtifact:
    """An artifact around ``build_classifier``; label names ``c0 .. c{K-1}``."""
    model = build_classifier(modalities, num_classes, seed)
    return artifact_from_module(
        model, {m: SHAPES[m] for m in modalities}, [f"c{i}" for i in range(num_classes)]
    )

"""Baseline architectures for the accuracy study (cosmo-method.md section 9).

``SequenceGRUClassifier`` is SingleModal (one encoder) and DeepSense-style (several encoders,
per-step concatenation); AttnSense-style and CMC reuse ``models.classifier.FusionClassifier``;
``CPCModel`` / ``CPCClassifier`` are contrastive predictive coding over the early-fused input.
``build_baseline(model_args)`` rebuilds any of them from its ``model_args()`` dict (checkpoints).
"""

from typing import Any, Dict

from torch import nn

from models.baselines.cpc import CPCClassifier, CPCModel, EarlyFusion
from models.baselines.sequence import SequenceGRUClassifier, encoder_sequence

__all__ = [
    "CPCClassifier",
    "CPCModel",
    "EarlyFusion",
    "SequenceGRUClassifier",
    "build_baseline",
    "encoder_sequence",
]

ARCHITECTURES = ("sequence-gru", "cpc")


def build_baseline(model_args: Dict[str, Any]) -> nn.Module:
    """A baseline classifier with random weights from ``model_args`` (its ``architecture`` key)."""
    architecture = model_args.get("architecture")
    if architecture == "sequence-gru":
        return SequenceGRUClassifier.from_args(model_args)
    if architecture == "cpc":
        return CPCClassifier.from_args(model_args)
    raise ValueError(f"unknown baseline architecture {architecture!r} (known: {ARCHITECTURES})")

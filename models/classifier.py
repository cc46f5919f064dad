"""The stage-2 model: per-modality encoders, attention + QoM fusion and an MLP head (section 4).

``FusionClassifier.forward(inputs, present)`` returns class logits. ``encode`` and ``classify`` split
that forward so training can run (or cache) the encoders once while only the classifier learns.
``classifier_parameters()`` / ``encoder_parameters()`` give the two parts iterative fusion learning
alternates between. ``model_args()`` returns a plain JSON-able dict and
``build_fusion_classifier(model_args)`` rebuilds the same architecture from it (checkpoints).
"""

import logging
from typing import Any, Dict, Iterator, List, Optional, Sequence

import torch
from torch import nn

from models.encoders import build_encoder
from models.fusion import AttentionFusion

logger = logging.getLogger(__name__)


class FusionClassifier(nn.Module):
    """Encoders (ModuleDict; its key order is the modality order) + fusion + head -> logits (N, K)."""

    def __init__(
        self,
        encoders: nn.ModuleDict,
        num_classes: int,
        qom_weights: Sequence[float],
        qom_lambda: float = 0.8,
        fusion_op: str = "concat",
        hidden_dim: int = 128,
        dropout: float = 0.5,
        score_scale: bool = False,
    ) -> None:
        super().__init__()
        if len(encoders) == 0:
            raise ValueError("FusionClassifier needs at least one encoder")
        self.encoders = encoders
        self.modalities: List[str] = list(encoders.keys())
        self.num_classes = int(num_classes)
        dims = [int(encoder.feature_dim) for encoder in encoders.values()]
        self.fusion = AttentionFusion(dims, qom_weights, qom_lambda, fusion_op, score_scale)
        self.head = nn.Sequential(
            nn.Linear(self.fusion.output_dim, hidden_dim),
            nn.BatchNorm1d(hidden_dim),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(hidden_dim, self.num_classes),
        )
        self._head_args = {"hidden_dim": int(hidden_dim), "dropout": float(dropout)}
        self._score_scale = bool(score_scale)

    def encode(self, inputs: Dict[str, torch.Tensor]) -> List[torch.Tensor]:
        """Per-modality features in ``self.modalities`` order; missing keys raise ``KeyError``."""
        missing = [m for m in self.modalities if m not in inputs]
        if missing:
            raise KeyError(f"inputs lack modalities {missing} (model expects {self.modalities})")
        return [self.encoders[m](inputs[m]) for m in self.modalities]

    def classify(self, features: List[torch.Tensor], present: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Fuse encoder features (attention + QoM) and apply the head -> logits (N, K)."""
        fused, _ = self.fusion(features, present)
        return self.head(fused)

    def forward(
        self, inputs: Dict[str, torch.Tensor], present: Optional[torch.Tensor] = None
    ) -> torch.Tensor:
        """``present`` is (N, M) in ``self.modalities`` order; absent modalities get zero weight."""
        return self.classify(self.encode(inputs), present)

    def modality_weights(
        self, inputs: Dict[str, torch.Tensor], present: Optional[torch.Tensor] = None
    ) -> torch.Tensor:
        """The blended fusion weights beta (N, M), for inspection and logging."""
        return self.fusion.weights(self.encode(inputs), present)

    def encoder_parameters(self) -> Iterator[nn.Parameter]:
        """Parameters of every encoder (the stage-1 part)."""
        return self.encoders.parameters()

    def classifier_parameters(self) -> Iterator[nn.Parameter]:
        """Parameters of the attention fusion and the head (initialised at random in stage 2)."""
        yield from self.fusion.parameters()
        yield from self.head.parameters()

    def classifier_modules(self) -> List[nn.Module]:
        """The modules trained in classifier blocks (fusion and head)."""
        return [self.fusion, self.head]

    def model_args(self) -> Dict[str, Any]:
        """Plain dict that ``build_fusion_classifier`` turns back into this architecture.

        Encoders must come from ``models.encoders.build_encoder`` (which records ``build_spec``).
        """
        return {
            "encoders": encoder_specs(self.encoders),
            "num_classes": self.num_classes,
            "qom_weights": [float(w) for w in self.fusion.qom_weights.tolist()],
            "qom_lambda": self.fusion.qom_lambda,
            "fusion_op": self.fusion.fusion_op,
            "hidden_dim": self._head_args["hidden_dim"],
            "dropout": self._head_args["dropout"],
            "score_scale": self._score_scale,
        }


def encoder_specs(encoders: nn.ModuleDict) -> Dict[str, Dict[str, Any]]:
    """{modality: build_spec} for encoders made by ``build_encoder``; others raise ``ValueError``."""
    specs = {}
    for modality, encoder in encoders.items():
        spec = getattr(encoder, "build_spec", None)
        if spec is None:
            raise ValueError(f"encoder {modality!r} was not made by build_encoder; its spec is unknown")
        specs[modality] = {"input_shape": list(spec["input_shape"]), "options": dict(spec["options"])}
    return specs


def build_encoders(encoder_specs: Dict[str, Dict[str, Any]]) -> nn.ModuleDict:
    """{modality: {"input_shape": [...], "options": {...}}} -> ModuleDict in the same order."""
    return nn.ModuleDict(
        {
            modality: build_encoder(modality, tuple(spec["input_shape"]), **dict(spec.get("options", {})))
            for modality, spec in encoder_specs.items()
        }
    )


def build_fusion_classifier(model_args: Dict[str, Any]) -> FusionClassifier:
    """Rebuild a FusionClassifier (random weights) from ``FusionClassifier.model_args`` output."""
    return FusionClassifier(
        build_encoders(model_args["encoders"]),
        num_classes=model_args["num_classes"],
        qom_weights=model_args["qom_weights"],
        qom_lambda=model_args["qom_lambda"],
        fusion_op=model_args["fusion_op"],
        hidden_dim=model_args["hidden_dim"],
        dropout=model_args["dropout"],
        score_scale=model_args.get("score_scale", False),
    )

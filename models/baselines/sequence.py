"""SingleModal and DeepSense-style classifiers: encoder sequences, concatenation, 2-layer GRU, MLP head.

The project's encoders end in global pooling; these baselines instead take each encoder's last
temporal feature map (before pooling), bring every modality to the shortest time axis with adaptive
average pooling, concatenate the channels per step (no fusion weights) and run a GRU over time
whose outputs are averaged over the steps (DeepSense's output layer). With one encoder this is the
SingleModal baseline; with several it is the simplified DeepSense of cosmo-method.md section 9.

The class exposes the same training surface as ``FusionClassifier`` (``encoders``, ``modalities``,
``num_classes``, ``encoder_parameters``, ``classifier_parameters``, ``classifier_modules``) so the
stage-2 trainer can train it jointly unchanged.
"""

import logging
from typing import Any, Dict, Iterator, List, Optional

import torch
import torch.nn.functional as F
from torch import nn

from models.classifier import build_encoders, encoder_specs

logger = logging.getLogger(__name__)


def encoder_sequence(encoder: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The encoder's last feature map before global pooling: (N, *input_shape) -> (N, C, T').

    Works for the temporal-convolution encoders (``sequence_input`` + ``body``) and the depth
    encoder (``frame_features`` + ``temporal_body``); other encoders raise ``TypeError``.
    """
    if hasattr(encoder, "temporal_body") and hasattr(encoder, "frame_features"):
        stride = int(getattr(encoder, "frame_stride", 1))
        per_frame = encoder.frame_features(x[:, ::stride])
        return encoder.temporal_body(per_frame.transpose(1, 2))
    if hasattr(encoder, "sequence_input") and hasattr(encoder, "body"):
        return encoder.body(encoder.sequence_input(x))
    raise TypeError(f"{type(encoder).__name__} exposes no temporal feature map for a GRU baseline")


def sequence_channels(encoder: nn.Module) -> int:
    """Channels of ``encoder_sequence`` output: half the pooled width (average + max pooling)."""
    return int(encoder.feature_dim) // 2


class SequenceGRUClassifier(nn.Module):
    """Per-modality encoder sequences -> per-step concatenation -> GRU -> MLP head -> logits (N, K)."""

    def __init__(
        self,
        encoders: nn.ModuleDict,
        num_classes: int,
        gru_hidden: int = 128,
        gru_layers: int = 2,
        hidden_dim: int = 128,
        dropout: float = 0.5,
    ) -> None:
        super().__init__()
        if len(encoders) == 0:
            raise ValueError("SequenceGRUClassifier needs at least one encoder")
        self.encoders = encoders
        self.modalities: List[str] = list(encoders.keys())
        self.num_classes = int(num_classes)
        in_dim = sum(sequence_channels(e) for e in encoders.values())
        self.gru = nn.GRU(in_dim, gru_hidden, num_layers=gru_layers, batch_first=True)
        self.head = nn.Sequential(
            nn.Linear(gru_hidden, hidden_dim),
            nn.BatchNorm1d(hidden_dim),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(hidden_dim, self.num_classes),
        )
        self._args = {
            "gru_hidden": int(gru_hidden),
            "gru_layers": int(gru_layers),
            "hidden_dim": int(hidden_dim),
            "dropout": float(dropout),
        }

    def encode(self, inputs: Dict[str, torch.Tensor]) -> List[torch.Tensor]:
        """Per-modality feature maps (N, C_j, T_j) in ``self.modalities`` order."""
        missing = [m for m in self.modalities if m not in inputs]
        if missing:
            raise KeyError(f"inputs lack modalities {missing} (model expects {self.modalities})")
        return [encoder_sequence(self.encoders[m], inputs[m]) for m in self.modalities]

    def classify(self, features: List[torch.Tensor], present: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Align the time axes, concatenate channels, GRU, mean over steps, head -> logits (N, K).

        Concatenation has no weights to renormalise, so an absent modality (``present`` False) has
        its feature map set to zero; this baseline is not meant for missing-modality serving.
        """
        steps = min(f.shape[-1] for f in features)
        aligned = [F.adaptive_avg_pool1d(f, steps) if f.shape[-1] != steps else f for f in features]
        if present is not None:
            mask = present.to(aligned[0])
            aligned = [f * mask[:, j].view(-1, 1, 1) for j, f in enumerate(aligned)]
        sequence = torch.cat(aligned, dim=1).transpose(1, 2)
        output, _ = self.gru(sequence)
        return self.head(output.mean(dim=1))

    def forward(
        self, inputs: Dict[str, torch.Tensor], present: Optional[torch.Tensor] = None
    ) -> torch.Tensor:
        """Inputs per modality -> logits (N, K)."""
        return self.classify(self.encode(inputs), present)

    def encoder_parameters(self) -> Iterator[nn.Parameter]:
        """Parameters of the per-modality encoders."""
        return self.encoders.parameters()

    def classifier_parameters(self) -> Iterator[nn.Parameter]:
        """Parameters of the GRU and the head."""
        yield from self.gru.parameters()
        yield from self.head.parameters()

    def classifier_modules(self) -> List[nn.Module]:
        """The modules above the encoders (GRU and head)."""
        return [self.gru, self.head]

    def model_args(self) -> Dict[str, Any]:
        """Plain dict that ``from_args`` (and ``models.baselines.build_baseline``) rebuilds."""
        return dict(
            self._args,
            architecture="sequence-gru",
            encoders=encoder_specs(self.encoders),
            num_classes=self.num_classes,
        )

    @classmethod
    def from_args(cls, model_args: Dict[str, Any]) -> "SequenceGRUClassifier":
        """Rebuild (random weights) from ``model_args()`` output."""
        return cls(
            build_encoders(model_args["encoders"]),
            num_classes=model_args["num_classes"],
            gru_hidden=model_args["gru_hidden"],
            gru_layers=model_args["gru_layers"],
            hidden_dim=model_args["hidden_dim"],
            dropout=model_args["dropout"],
        )

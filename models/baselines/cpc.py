"""Contrastive predictive coding over the early-fused multimodal input (cosmo-method.md section 9).

``EarlyFusion`` flattens every modality per time step (depth frames area-averaged first), resamples
each to ``steps`` time steps (linear, endpoints kept) and concatenates the channels: one (N, C, T)
sequence. A causal 1-D CNN (left padding only) maps it to latents z_t, a GRU summarises z_<=t into
the context c_t, and linear maps W_k predict z_{t+k} for k = 1..K_pred. ``CPCModel.loss`` is the
InfoNCE of those predictions against the latents of the other anchor positions and samples in the
batch. ``CPCClassifier`` puts an MLP head on the context vectors averaged over time (on UTD-MHAD
at 10 % labels the last context vector alone gave about a third of that accuracy).
"""

import logging
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn

logger = logging.getLogger(__name__)


class EarlyFusion(nn.Module):
    """{modality: (N, T_m, ...)} -> (N, C, steps); parameter-free."""

    def __init__(self, input_shapes: Dict[str, Sequence[int]], steps: int = 40, depth_pool: int = 8) -> None:
        super().__init__()
        self.input_shapes = {m: tuple(int(s) for s in shape) for m, shape in input_shapes.items()}
        self.modalities: List[str] = list(self.input_shapes)
        self.steps = int(steps)
        self.depth_pool = int(depth_pool)
        self.channels = sum(self._channels(m, shape) for m, shape in self.input_shapes.items())

    def _channels(self, modality: str, shape: Tuple[int, ...]) -> int:
        if modality == "depth":
            return (shape[1] // self.depth_pool) * (shape[2] // self.depth_pool)
        count = 1
        for size in shape[1:]:
            count *= size
        return count

    def forward(self, inputs: Dict[str, torch.Tensor]) -> torch.Tensor:
        """Flatten, resample to ``steps`` and concatenate channels -> (N, C, steps)."""
        parts = []
        for m in self.modalities:
            x = inputs[m]
            if m == "depth":
                n, t = x.shape[0], x.shape[1]
                pooled = F.avg_pool2d(x.reshape(n * t, 1, x.shape[2], x.shape[3]), self.depth_pool)
                x = pooled.reshape(n, t, -1)
            x = x.reshape(x.shape[0], x.shape[1], -1).transpose(1, 2)
            if x.shape[-1] != self.steps:
                x = F.interpolate(x, size=self.steps, mode="linear", align_corners=True)
            parts.append(x)
        return torch.cat(parts, dim=1)


class CausalConvEncoder(nn.Module):
    """Causal Conv1d -> BN -> ReLU blocks: (N, C_in, T) -> (N, T, latent_dim); z_t sees steps <= t."""

    def __init__(self, in_channels: int, channels: Sequence[int] = (64, 128), kernel_size: int = 5) -> None:
        super().__init__()
        layers: List[nn.Module] = []
        previous = in_channels
        for width in channels:
            layers += [
                nn.ConstantPad1d((kernel_size - 1, 0), 0.0),
                nn.Conv1d(previous, width, kernel_size, bias=False),
                nn.BatchNorm1d(width),
                nn.ReLU(inplace=True),
            ]
            previous = width
        self.body = nn.Sequential(*layers)
        self.latent_dim = int(channels[-1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x).transpose(1, 2)


class CPCModel(nn.Module):
    """Early fusion + causal encoder (z_t) + GRU context (c_t) + K_pred linear predictors."""

    def __init__(
        self,
        input_shapes: Dict[str, Sequence[int]],
        steps: int = 40,
        channels: Sequence[int] = (64, 128),
        context_dim: int = 128,
        k_pred: int = 4,
        depth_pool: int = 8,
    ) -> None:
        super().__init__()
        if k_pred < 1 or k_pred >= steps:
            raise ValueError(f"k_pred must lie in 1..{steps - 1}, got {k_pred}")
        self.fusion = EarlyFusion(input_shapes, steps, depth_pool)
        self.modalities = self.fusion.modalities
        self.encoder = CausalConvEncoder(self.fusion.channels, channels)
        self.context = nn.GRU(self.encoder.latent_dim, context_dim, batch_first=True)
        self.predictors = nn.ModuleList(
            [nn.Linear(context_dim, self.encoder.latent_dim) for _ in range(k_pred)]
        )
        self.context_dim = int(context_dim)
        self._args = {
            "input_shapes": {m: list(s) for m, s in self.fusion.input_shapes.items()},
            "steps": int(steps),
            "channels": [int(c) for c in channels],
            "context_dim": int(context_dim),
            "k_pred": int(k_pred),
            "depth_pool": int(depth_pool),
        }

    def latents_and_context(self, inputs: Dict[str, torch.Tensor]) -> Tuple[torch.Tensor, torch.Tensor]:
        """(z (N, T, latent_dim), c (N, T, context_dim))."""
        z = self.encoder(self.fusion(inputs))
        c, _ = self.context(z)
        return z, c

    def loss(
        self,
        inputs: Dict[str, torch.Tensor],
        num_anchors: int = 8,
        generator: Optional[torch.Generator] = None,
    ) -> torch.Tensor:
        """InfoNCE averaged over k = 1..K_pred at ``num_anchors`` random anchor steps per batch.

        For anchor step t and offset k the prediction W_k c_t of sample n is scored (dot product)
        against z_{t'+k} of every sample n' and anchor t'; the positive is (n, t). Negatives are
        therefore the other samples and the other time steps of the batch.
        """
        z, c = self.latents_and_context(inputs)
        n, steps, _ = z.shape
        k_pred = len(self.predictors)
        count = min(num_anchors, steps - k_pred)
        anchors = torch.randperm(steps - k_pred, generator=generator)[:count]
        total = z.new_zeros(())
        targets = torch.arange(n * count, device=z.device)
        for k, predictor in enumerate(self.predictors, start=1):
            predictions = predictor(c[:, anchors]).reshape(n * count, -1)
            future = z[:, anchors + k].reshape(n * count, -1)
            total = total + F.cross_entropy(predictions @ future.t(), targets)
        return total / k_pred

    def model_args(self) -> Dict[str, Any]:
        """Plain dict for ``CPCModel(**model_args)``."""
        return dict(self._args)


class CPCClassifier(nn.Module):
    """CPC encoder + context GRU (``encoders``) and an MLP head on the time-averaged context."""

    def __init__(self, cpc: CPCModel, num_classes: int, hidden_dim: int = 128, dropout: float = 0.5) -> None:
        super().__init__()
        self.fusion = cpc.fusion
        self.modalities = list(cpc.modalities)
        self.encoders = nn.ModuleDict({"encoder": cpc.encoder, "context": cpc.context})
        self.num_classes = int(num_classes)
        self.head = nn.Sequential(
            nn.Linear(cpc.context_dim, hidden_dim),
            nn.BatchNorm1d(hidden_dim),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(hidden_dim, self.num_classes),
        )
        self._cpc_args = cpc.model_args()
        self._head_args = {"hidden_dim": int(hidden_dim), "dropout": float(dropout)}

    def forward(
        self, inputs: Dict[str, torch.Tensor], present: Optional[torch.Tensor] = None
    ) -> torch.Tensor:
        """Inputs -> logits (N, K). Early fusion has no per-modality weights, so absent inputs are zeroed."""
        if present is not None:
            mask = present.to(dtype=torch.float32)
            inputs = {
                m: inputs[m] * mask[:, j].view(-1, *[1] * (inputs[m].dim() - 1)).to(inputs[m])
                for j, m in enumerate(self.modalities)
            }
        z = self.encoders["encoder"](self.fusion(inputs))
        c, _ = self.encoders["context"](z)
        return self.head(c.mean(dim=1))

    def encoder_parameters(self) -> Iterator[nn.Parameter]:
        """Causal encoder and context GRU (pre-trained by CPC)."""
        return self.encoders.parameters()

    def classifier_parameters(self) -> Iterator[nn.Parameter]:
        """The head."""
        return self.head.parameters()

    def classifier_modules(self) -> List[nn.Module]:
        """The modules trained on top of the pre-trained part."""
        return [self.head]

    def model_args(self) -> Dict[str, Any]:
        """Plain dict that ``from_args`` rebuilds; ``encoders`` names the modalities and shapes."""
        shapes = self._cpc_args["input_shapes"]
        return dict(
            self._head_args,
            architecture="cpc",
            cpc=dict(self._cpc_args),
            num_classes=self.num_classes,
            encoders={m: {"input_shape": list(shapes[m]), "options": {}} for m in self.modalities},
        )

    @classmethod
    def from_args(cls, model_args: Dict[str, Any]) -> "CPCClassifier":
        """Rebuild (random weights) from ``model_args()`` output."""
        cpc = CPCModel(**model_args["cpc"])
        return cls(cpc, model_args["num_classes"], model_args["hidden_dim"], model_args["dropout"])

"""The stage-1 model: per-modality encoders f_j with projection heads g_j (cosmo-method.md 2.1).

``CosmoPretrainModel(inputs)`` returns r (N, M, d): one L2-normalised projection per modality, in
the encoders' key order, ready for the fused positives of the contrastive fusion loss. The heads are
discarded after stage 1; only ``encoders`` is carried into the stage-2 classifier.
"""

import logging
from typing import Dict

import torch
import torch.nn.functional as F
from torch import nn

logger = logging.getLogger(__name__)


class ProjectionHead(nn.Module):
    """g_j: Linear -> BN -> ReLU -> Linear(proj_dim); the reference uses 1280 hidden, we use 256."""

    def __init__(self, in_dim: int, hidden_dim: int = 256, proj_dim: int = 128) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(in_dim, hidden_dim),
            nn.BatchNorm1d(hidden_dim),
            nn.ReLU(inplace=True),
            nn.Linear(hidden_dim, proj_dim),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """(N, in_dim) -> (N, proj_dim), not normalised."""
        return self.net(z)


class CosmoPretrainModel(nn.Module):
    """Encoders + projection heads; forward gives unit-length projections (N, M, proj_dim)."""

    def __init__(self, encoders: nn.ModuleDict, proj_dim: int = 128, head_hidden: int = 256) -> None:
        super().__init__()
        if len(encoders) < 2:
            raise ValueError(f"contrastive fusion needs at least 2 modalities, got {list(encoders)}")
        self.encoders = encoders
        self.modalities = list(encoders.keys())
        self.proj_dim = int(proj_dim)
        self.heads = nn.ModuleDict(
            {m: ProjectionHead(int(enc.feature_dim), head_hidden, proj_dim) for m, enc in encoders.items()}
        )

    def features(self, inputs: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
        """Encoder outputs f_j(x_j) per modality (what the stage-2 classifier consumes)."""
        return {m: self.encoders[m](inputs[m]) for m in self.modalities}

    def project(self, features: Dict[str, torch.Tensor]) -> torch.Tensor:
        """Encoder features -> L2-normalised projections r (N, M, proj_dim)."""
        projections = [F.normalize(self.heads[m](features[m]), dim=-1) for m in self.modalities]
        return torch.stack(projections, dim=1)

    def forward(self, inputs: Dict[str, torch.Tensor]) -> torch.Tensor:
        """Inputs per modality -> r (N, M, proj_dim), each row unit length."""
        return self.project(self.features(inputs))

"""Attention fusion of per-modality features, blended with quality-of-modality (QoM) weights.

cosmo-method.md section 4.1: for modality j with feature z_j, mu_j = tanh(W_j z_j + b_j) and
beta_Attn = softmax_j(mu_j . z_j) per sample (one W_j per modality, since widths may differ).
Section 3.4: beta = (1 - lambda) * beta_Attn + lambda * beta_QoM, renormalised. Section 4.2: the
operators ``concat`` (ConcateAttn, v = [beta_1 z_1, ..., beta_M z_M]) and ``sum`` (SumAttn,
v = sum_j beta_j z_j, equal widths only).

An absent modality (``present`` False) is masked out of both the attention softmax and the QoM
prior, and the weights are renormalised over the present modalities; its features get weight 0.
"""

import logging
import math
from typing import List, Optional, Sequence, Tuple

import torch
from torch import nn

logger = logging.getLogger(__name__)

FUSION_OPS = ("concat", "sum")


def masked_softmax(scores: torch.Tensor, present: Optional[torch.Tensor]) -> torch.Tensor:
    """Softmax over the last axis of (N, M) scores, ignoring entries where ``present`` is False.

    A row with no present modality gets all-zero weights (not NaN).
    """
    if present is None:
        return torch.softmax(scores, dim=-1)
    mask = present.to(dtype=torch.bool)
    filled = scores.masked_fill(~mask, float("-inf"))
    row_max = filled.amax(dim=-1, keepdim=True)
    row_max = torch.where(torch.isfinite(row_max), row_max, torch.zeros_like(row_max))
    weights = torch.exp(filled - row_max) * mask
    return weights / weights.sum(dim=-1, keepdim=True).clamp_min(1e-12)


def blend_with_qom(
    beta_attn: torch.Tensor, qom_weights: torch.Tensor, qom_lambda: float, present: Optional[torch.Tensor]
) -> torch.Tensor:
    """beta = (1 - lambda) beta_Attn + lambda beta_QoM (QoM renormalised over present), then renormalise."""
    prior = qom_weights.to(beta_attn).unsqueeze(0).expand_as(beta_attn)
    if present is not None:
        prior = prior * present.to(beta_attn)
    prior = prior / prior.sum(dim=-1, keepdim=True).clamp_min(1e-12)
    beta = (1.0 - qom_lambda) * beta_attn + qom_lambda * prior
    return beta / beta.sum(dim=-1, keepdim=True).clamp_min(1e-12)


class ModalityAttention(nn.Module):
    """Per-sample modality scores mu_j . z_j with mu_j = tanh(W_j z_j + b_j) (section 4.1)."""

    def __init__(self, feature_dims: Sequence[int], score_scale: bool = False) -> None:
        super().__init__()
        self.feature_dims = [int(d) for d in feature_dims]
        self.queries = nn.ModuleList([nn.Linear(d, d) for d in self.feature_dims])
        self.scales = [1.0 / math.sqrt(d) if score_scale else 1.0 for d in self.feature_dims]

    def forward(self, features: List[torch.Tensor], present: Optional[torch.Tensor] = None) -> torch.Tensor:
        """List of M (N, d_j) tensors -> beta_Attn (N, M) on the simplex over present modalities."""
        scores = [
            (torch.tanh(query(z)) * z).sum(dim=-1) * scale
            for query, z, scale in zip(self.queries, features, self.scales)
        ]
        return masked_softmax(torch.stack(scores, dim=-1), present)


class AttentionFusion(nn.Module):
    """Attention + QoM weighting and the fusion operator; returns the fused vector and the weights."""

    def __init__(
        self,
        feature_dims: Sequence[int],
        qom_weights: Sequence[float],
        qom_lambda: float = 0.8,
        fusion_op: str = "concat",
        score_scale: bool = False,
    ) -> None:
        super().__init__()
        dims = [int(d) for d in feature_dims]
        if len(qom_weights) != len(dims):
            raise ValueError(f"{len(qom_weights)} QoM weights for {len(dims)} modalities")
        if fusion_op not in FUSION_OPS:
            raise ValueError(f"fusion_op must be one of {FUSION_OPS}, got {fusion_op!r}")
        if fusion_op == "sum" and len(set(dims)) != 1:
            raise ValueError(f"fusion_op 'sum' needs equal feature widths, got {dims}")
        if not 0.0 <= qom_lambda <= 1.0:
            raise ValueError(f"qom_lambda must lie in [0, 1], got {qom_lambda}")
        self.fusion_op = fusion_op
        self.qom_lambda = float(qom_lambda)
        self.attention = ModalityAttention(dims, score_scale=score_scale)
        self.register_buffer("qom_weights", torch.tensor([float(w) for w in qom_weights]))
        self.output_dim = sum(dims) if fusion_op == "concat" else dims[0]

    def weights(self, features: List[torch.Tensor], present: Optional[torch.Tensor] = None) -> torch.Tensor:
        """The blended per-sample modality weights beta (N, M)."""
        beta_attn = self.attention(features, present)
        return blend_with_qom(beta_attn, self.qom_weights, self.qom_lambda, present)

    def forward(
        self, features: List[torch.Tensor], present: Optional[torch.Tensor] = None
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """List of M (N, d_j) tensors -> (fused (N, output_dim), beta (N, M))."""
        beta = self.weights(features, present)
        weighted = [beta[:, j : j + 1] * z for j, z in enumerate(features)]
        if self.fusion_op == "concat":
            return torch.cat(weighted, dim=1), beta
        return torch.stack(weighted, dim=0).sum(dim=0), beta

"""Contrastive fusion (cosmo-method.md section 2): fused positives and the multi-positive InfoNCE.

Each sample i has unit projections r_1..r_M (from ``models.cosmo.CosmoPretrainModel``). P fused views
v^{i,p} = normalise(sum_j alpha_j^{i,p} r_j) are drawn with convex weights alpha (Dirichlet or fixed).
All P*N views form the set S; the positives of view s are the other P-1 views of its sample, the
denominator runs over every view but s itself (a mask, not a zeroed term), and the log-denominator is a
max-subtracted log-sum-exp. The loss is the mean over anchors; its floor is log(P - 1) (section 2.4).
"""

import logging
from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F

logger = logging.getLogger(__name__)

WEIGHT_MODES = ("dirichlet", "fixed")
DIRICHLET_SCOPES = ("sample", "batch")


def sample_fusion_weights(
    batch_size: int,
    num_views: int,
    num_modalities: int,
    mode: str = "dirichlet",
    rng: Optional[np.random.Generator] = None,
    dirichlet_alpha: float = 1.0,
    scope: str = "sample",
) -> torch.Tensor:
    """Convex weights alpha (batch_size, num_views, num_modalities), each row on the simplex.

    ``dirichlet``: alpha ~ Dirichlet(dirichlet_alpha, ...), fresh per sample and view (``scope``
    ``sample``) or one set of P vectors shared by the batch (``batch``). ``fixed`` (M = 2 only):
    w_p = p / (P + 1), view p = w_p r_1 + (1 - w_p) r_2, convex for every P (reference for P = 9).
    """
    if num_views < 2:
        raise ValueError(f"need at least 2 views per sample, got {num_views}")
    if num_modalities < 2:
        raise ValueError(f"need at least 2 modalities, got {num_modalities}")
    if mode == "fixed":
        if num_modalities != 2:
            raise ValueError("fixed fusion weights are defined for 2 modalities; use 'dirichlet'")
        w = torch.arange(1, num_views + 1, dtype=torch.float32) / (num_views + 1)
        alphas = torch.stack([w, 1.0 - w], dim=-1)
        return alphas.unsqueeze(0).expand(batch_size, num_views, 2).contiguous()
    if mode != "dirichlet":
        raise ValueError(f"fusion weight mode must be one of {WEIGHT_MODES}, got {mode!r}")
    if scope not in DIRICHLET_SCOPES:
        raise ValueError(f"dirichlet scope must be one of {DIRICHLET_SCOPES}, got {scope!r}")
    rng = rng if rng is not None else np.random.default_rng()
    concentration = np.full(num_modalities, float(dirichlet_alpha))
    rows = batch_size if scope == "sample" else 1
    draws = rng.dirichlet(concentration, size=(rows, num_views)).astype(np.float32)
    alphas = torch.from_numpy(draws)
    return alphas.expand(batch_size, num_views, num_modalities).contiguous()


def fuse_views(projections: torch.Tensor, alphas: torch.Tensor) -> torch.Tensor:
    """(N, M, d) unit projections and (N, P, M) weights -> (N, P, d) re-normalised fused views."""
    if projections.shape[0] != alphas.shape[0] or projections.shape[1] != alphas.shape[2]:
        raise ValueError(f"projections {tuple(projections.shape)} do not match weights {tuple(alphas.shape)}")
    views = torch.einsum("npm,nmd->npd", alphas.to(projections), projections)
    return F.normalize(views, dim=-1)


def contrastive_fusion_loss(views: torch.Tensor, temperature: float = 0.07) -> torch.Tensor:
    """Multi-positive InfoNCE over (N, P, d) unit views; mean over the N*P anchors (section 2.3)."""
    if views.dim() != 3:
        raise ValueError(f"views must be (N, P, d), got shape {tuple(views.shape)}")
    n, p, d = views.shape
    if p < 2:
        raise ValueError(f"need at least 2 views per sample, got {p}")
    if n * p < 3:
        raise ValueError("need at least one negative: N * P must be >= 3")
    flat = views.reshape(n * p, d)
    logits = flat @ flat.t() / temperature
    sample_id = torch.arange(n, device=views.device).repeat_interleave(p)
    self_mask = torch.eye(n * p, dtype=torch.bool, device=views.device)
    positive_mask = (sample_id.unsqueeze(0) == sample_id.unsqueeze(1)) & ~self_mask
    # log sum_{a != s} exp(logit_sa), with the row maximum subtracted before exponentiating.
    masked = logits.masked_fill(self_mask, float("-inf"))
    row_max = masked.amax(dim=1, keepdim=True).detach()
    log_denominator = row_max + torch.log(torch.exp(masked - row_max).sum(dim=1, keepdim=True))
    log_prob = logits - log_denominator
    positive_log_prob = (log_prob * positive_mask).sum(dim=1) / positive_mask.sum(dim=1)
    return -positive_log_prob.mean()


def loss_floor(num_views: int) -> float:
    """The lower bound log(P - 1) of the loss for P views per sample (section 2.4)."""
    return float(np.log(num_views - 1))

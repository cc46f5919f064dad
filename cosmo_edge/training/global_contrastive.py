"""The multi-positive InfoNCE of ``contrastive.contrastive_fusion_loss`` over the global batch of all ranks.

Each rank fuses the views of its own B samples, gathers every rank's views with gradients
(``distributed.all_gather_with_grad``), and scores its own B*P anchors against all N*B*P views: the
same positives (the other views of the anchor's sample), the same denominator (every view but the
anchor itself, masked), the same max-subtracted log-sum-exp. Rank r returns

    L_r = N / (total anchors) * sum over its own anchors of the anchor's loss,

so the ranks' L_r average to the single-process loss over all anchors, and with
DistributedDataParallel averaging the gradients and the gather's backward summing them, the update
equals the single-process update. Every rank must hold the same number of samples (the gather needs
equal shapes; ``distributed_data.ShardedBatches`` guarantees it).
"""

import logging

import torch

from cosmo_edge.training.distributed import all_gather_with_grad

logger = logging.getLogger(__name__)


def anchor_losses(
    anchors: torch.Tensor, views: torch.Tensor, offset: int, temperature: float
) -> torch.Tensor:
    """Per-anchor loss of ``anchors`` (b, P, d) = rows offset..offset+b of ``views`` (n, P, d) -> (b*P,)."""
    if anchors.dim() != 3 or views.dim() != 3:
        raise ValueError(f"views must be (N, P, d), got {tuple(anchors.shape)} and {tuple(views.shape)}")
    b, p, d = anchors.shape
    n = views.shape[0]
    if p < 2:
        raise ValueError(f"need at least 2 views per sample, got {p}")
    if n * p < 3:
        raise ValueError("need at least one negative: N * P must be >= 3")
    if not 0 <= offset <= n - b:
        raise ValueError(f"anchor rows {offset}..{offset + b} do not lie inside {n} samples")
    flat_anchors = anchors.reshape(b * p, d)
    flat = views.reshape(n * p, d)
    logits = flat_anchors @ flat.t() / temperature
    device = views.device
    anchor_sample = torch.arange(offset, offset + b, device=device).repeat_interleave(p)
    column_sample = torch.arange(n, device=device).repeat_interleave(p)
    anchor_column = torch.arange(offset * p, (offset + b) * p, device=device)
    self_mask = anchor_column.unsqueeze(1) == torch.arange(n * p, device=device).unsqueeze(0)
    positive_mask = (anchor_sample.unsqueeze(1) == column_sample.unsqueeze(0)) & ~self_mask
    masked = logits.masked_fill(self_mask, float("-inf"))
    row_max = masked.amax(dim=1, keepdim=True).detach()
    log_denominator = row_max + torch.log(torch.exp(masked - row_max).sum(dim=1, keepdim=True))
    log_prob = logits - log_denominator
    return -(log_prob * positive_mask).sum(dim=1) / positive_mask.sum(dim=1)


def global_contrastive_loss(
    local_views: torch.Tensor,
    temperature: float,
    rank: int = 0,
    world_size: int = 1,
    gather_backward: str = "auto",
) -> torch.Tensor:
    """This rank's share L_r of the global-batch loss (see the module docstring); (B, P, d) views in.

    The ranks' L_r average to what ``contrastive_fusion_loss`` gives for all ranks' views together.
    """
    if world_size == 1:
        return anchor_losses(local_views, local_views, 0, temperature).mean()
    all_views = all_gather_with_grad(local_views, backward=gather_backward)
    b = local_views.shape[0]
    # Anchors from the gathered tensor: its backward sums every rank's use of these rows.
    anchors = all_views[rank * b : (rank + 1) * b]
    losses = anchor_losses(anchors, all_views, rank * b, temperature)
    total_anchors = all_views.shape[0] * all_views.shape[1]
    return losses.sum() * (world_size / total_anchors)

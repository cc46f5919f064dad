"""CMC pre-training: two-view contrastive learning between raw modality projections (section 9).

The section-2 loss with P = M = 2 and the views fixed to the projections themselves (no convex
mixing): each anchor r_i^a has one positive (r_i^b, the other modality of the same sample) and
2N - 2 negatives. With more than two modalities the loss is summed over every modality pair. The
model is the stage-1 ``CosmoPretrainModel`` (encoders + projection heads), so its encoders slot into
the same stage-2 classifier.
"""

import itertools
import logging
import time
from typing import Dict, List

import numpy as np
import torch
from tqdm import tqdm

from cosmo_edge.training.augment import augment_batch
from cosmo_edge.training.batching import batch_indices
from cosmo_edge.training.config import Stage1Config
from cosmo_edge.training.contrastive import contrastive_fusion_loss
from cosmo_edge.training.seeding import torch_generator
from cosmo_edge.training.stage1 import make_sgd, multistep_lr, set_lr
from models.cosmo import CosmoPretrainModel

logger = logging.getLogger(__name__)


def cmc_loss(projections: torch.Tensor, temperature: float) -> torch.Tensor:
    """(N, M, d) unit projections -> sum over modality pairs of the two-view InfoNCE."""
    m = projections.shape[1]
    if m < 2:
        raise ValueError(f"CMC needs at least 2 modalities, got {m}")
    total = projections.new_zeros(())
    for a, b in itertools.combinations(range(m), 2):
        total = total + contrastive_fusion_loss(projections[:, [a, b]], temperature)
    return total


def train_cmc(
    model: CosmoPretrainModel,
    inputs: Dict[str, torch.Tensor],
    config: Stage1Config,
    seed: int,
    progress: bool = True,
) -> List[Dict]:
    """Train encoders + heads in place with the CMC loss; one history row per epoch.

    Uses the stage-1 optimiser, schedule, batch size, temperature and augmentations, so only the
    positives differ from Cosmo's contrastive fusion.
    """
    n = next(iter(inputs.values())).shape[0]
    rng = np.random.default_rng(seed)
    generator = torch_generator(seed)
    optimiser = make_sgd(model.parameters(), config.lr, config.momentum, config.weight_decay)
    history: List[Dict] = []
    model.train()
    for epoch in tqdm(range(1, config.epochs + 1), desc="CMC", disable=not progress, leave=False):
        started = time.perf_counter()
        lr = multistep_lr(config.lr, config.lr_milestones, config.lr_gamma, epoch)
        set_lr(optimiser, lr)
        losses = []
        for index in batch_indices(n, min(config.batch_size, n), rng):
            batch = augment_batch({m: x[index] for m, x in inputs.items()}, config.augment, generator)
            loss = cmc_loss(model(batch), config.temperature)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            losses.append(float(loss.detach()))
        history.append(
            {
                "epoch": epoch,
                "loss": float(np.mean(losses)),
                "lr": lr,
                "seconds": time.perf_counter() - started,
            }
        )
    logger.info("CMC: %d epochs, final loss %.4f", config.epochs, history[-1]["loss"] if history else 0.0)
    return history

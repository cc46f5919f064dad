"""CPC pre-training on the unlabeled split (section 9): InfoNCE on future latents, labels unused.

Batching, epochs and augmentations come from the stage-1 config so the budget matches Cosmo's;
the optimiser is Adam (learning rate ``lr``, default 1e-3), as in the CPC-for-HAR reference, since
plain SGD at the contrastive-fusion rate barely moves the predictors in short budgets.
"""

import logging
import time
from typing import Dict, List

import numpy as np
import torch
from tqdm import tqdm

from cosmo_edge.training.augment import augment_batch
from cosmo_edge.training.batching import batch_indices
from cosmo_edge.training.config import Stage1Config
from cosmo_edge.training.seeding import torch_generator
from models.baselines.cpc import CPCModel

logger = logging.getLogger(__name__)


def train_cpc(
    model: CPCModel,
    inputs: Dict[str, torch.Tensor],
    config: Stage1Config,
    seed: int,
    progress: bool = True,
    lr: float = 1e-3,
    num_anchors: int = 8,
) -> List[Dict]:
    """Train ``model`` in place; one history row per epoch (loss, seconds)."""
    n = next(iter(inputs.values())).shape[0]
    rng = np.random.default_rng(seed)
    generator = torch_generator(seed)
    optimiser = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=config.weight_decay)
    history: List[Dict] = []
    model.train()
    for epoch in tqdm(range(1, config.epochs + 1), desc="CPC", disable=not progress, leave=False):
        started = time.perf_counter()
        losses = []
        for index in batch_indices(n, min(config.batch_size, n), rng):
            batch = augment_batch({m: x[index] for m, x in inputs.items()}, config.augment, generator)
            loss = model.loss(batch, num_anchors, generator)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            losses.append(float(loss.detach()))
        history.append(
            {"epoch": epoch, "loss": float(np.mean(losses)), "seconds": time.perf_counter() - started}
        )
    logger.info("CPC: %d epochs, final loss %.4f", config.epochs, history[-1]["loss"] if history else 0.0)
    return history

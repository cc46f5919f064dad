"""Stage 1: contrastive fusion pre-training on unlabeled multimodal data (section 2.5).

Labels are never passed in. Each step: augment the batch (aligned crop + per-modality noise),
project every modality, draw P convex weights per sample, fuse and re-normalise the views, and take an
SGD step on the multi-positive InfoNCE loss. ``extract_features`` then gives the encoder (or
projection) features that QoM is computed on.
"""

import logging
import time
from typing import Dict, List, Sequence

import numpy as np
import torch
from tqdm import tqdm

from cosmo_edge.training.augment import augment_batch
from cosmo_edge.training.batching import batch_indices
from cosmo_edge.training.config import Stage1Config
from cosmo_edge.training.contrastive import contrastive_fusion_loss, fuse_views, sample_fusion_weights
from cosmo_edge.training.seeding import torch_generator
from models.cosmo import CosmoPretrainModel

logger = logging.getLogger(__name__)


def make_sgd(parameters, lr: float, momentum: float, weight_decay: float) -> torch.optim.SGD:
    """SGD with momentum and weight decay (section 6.4)."""
    return torch.optim.SGD(list(parameters), lr=lr, momentum=momentum, weight_decay=weight_decay)


def multistep_lr(base_lr: float, milestones: Sequence[int], gamma: float, epoch: int) -> float:
    """Learning rate of 1-based ``epoch``: ``base_lr`` times ``gamma`` per milestone already passed."""
    return base_lr * gamma ** sum(1 for m in milestones if epoch > m)


def set_lr(optimiser: torch.optim.Optimizer, lr: float) -> None:
    """Set every parameter group's learning rate."""
    for group in optimiser.param_groups:
        group["lr"] = lr


def project_copies(
    model: CosmoPretrainModel,
    batch: Dict[str, torch.Tensor],
    config: Stage1Config,
    generator: torch.Generator,
) -> torch.Tensor:
    """Unit projections (N, M * augment_copies, d) of ``augment_copies`` augmented copies of the batch.

    With one copy this is r_1..r_M of section 2.1. With more, every copy's projections join the set
    the convex weights mix, so the fused positives also tie together differently augmented versions
    of the same sample (invariance to the augmentations) as well as its modalities.
    """
    copies = [
        model(augment_batch(batch, config.augment, generator)) for _ in range(max(1, config.augment_copies))
    ]
    return torch.cat(copies, dim=1)


def train_stage1(
    model: CosmoPretrainModel,
    inputs: Dict[str, torch.Tensor],
    config: Stage1Config,
    seed: int,
    progress: bool = True,
) -> List[Dict]:
    """Train encoders + heads in place; return one history row per epoch (loss, lr, seconds)."""
    n = next(iter(inputs.values())).shape[0]
    rng = np.random.default_rng(seed)
    generator = torch_generator(seed)
    optimiser = make_sgd(model.parameters(), config.lr, config.momentum, config.weight_decay)
    batch_size = min(config.batch_size, n)
    history: List[Dict] = []
    model.train()
    bar = tqdm(range(1, config.epochs + 1), desc="stage 1", disable=not progress, leave=False)
    for epoch in bar:
        started = time.perf_counter()
        lr = multistep_lr(config.lr, config.lr_milestones, config.lr_gamma, epoch)
        set_lr(optimiser, lr)
        losses = []
        for index in batch_indices(n, batch_size, rng):
            projections = project_copies(model, {m: x[index] for m, x in inputs.items()}, config, generator)
            alphas = sample_fusion_weights(
                len(index),
                config.num_views,
                projections.shape[1],
                config.weights,
                rng,
                config.dirichlet_alpha,
                config.dirichlet_scope,
            )
            loss = contrastive_fusion_loss(fuse_views(projections, alphas), config.temperature)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            losses.append(float(loss.detach()))
        row = {
            "epoch": epoch,
            "loss": float(np.mean(losses)),
            "lr": lr,
            "seconds": time.perf_counter() - started,
        }
        history.append(row)
        bar.set_postfix(loss=f"{row['loss']:.4f}")
    logger.info("stage 1: %d epochs, final loss %.4f", config.epochs, history[-1]["loss"] if history else 0.0)
    return history


@torch.no_grad()
def extract_features(
    model: CosmoPretrainModel, inputs: Dict[str, torch.Tensor], kind: str = "encoder", batch_size: int = 256
) -> Dict[str, np.ndarray]:
    """Per-modality features in eval mode: ``encoder`` (f_j), ``projection`` (r_j) or ``raw`` inputs."""
    if kind == "raw":
        return {m: x.reshape(len(x), -1).cpu().numpy() for m, x in inputs.items() if m in model.modalities}
    if kind not in ("encoder", "projection"):
        raise ValueError(f"feature kind must be 'encoder', 'projection' or 'raw', got {kind!r}")
    was_training = model.training
    model.eval()
    n = next(iter(inputs.values())).shape[0]
    chunks: Dict[str, List[np.ndarray]] = {m: [] for m in model.modalities}
    for start in range(0, n, batch_size):
        features = model.features({m: inputs[m][start : start + batch_size] for m in model.modalities})
        if kind == "projection":
            projected = model.project(features)
            features = {m: projected[:, j] for j, m in enumerate(model.modalities)}
        for m in model.modalities:
            chunks[m].append(features[m].cpu().numpy())
    model.train(was_training)
    return {m: np.concatenate(parts) for m, parts in chunks.items()}

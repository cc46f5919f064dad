"""Stage 1 with DistributedDataParallel: the recipe of ``stage1.train_stage1`` over N processes.

Same building blocks (``project_copies``, ``augment_batch``, ``sample_fusion_weights``,
``fuse_views``, ``make_sgd``, ``multistep_lr``); what changes:

- ``stage1.batch_size`` is the global batch; each rank trains ``batch_size / N`` samples per step
  from a ``DistributedSampler`` permutation (``distributed_data.ShardedBatches``).
- BatchNorm is synchronised over ranks (``sync_batchnorm``), so statistics come from the global
  batch as in one process; the model is wrapped in DistributedDataParallel (gradients averaged).
- The contrastive loss gathers every rank's fused views with gradients and scores this rank's
  anchors against all of them (``global_contrastive``): N processes with batch B compute the loss
  and the update of one process with batch N*B.
- Augmentations and fusion weights are drawn from generators keyed by (seed, epoch, step) for the
  whole global batch, or by (seed, epoch, sample) (``distributed_data.draw_step``), and dropout is
  reseeded per (epoch, rank): the views do not depend on the world size and a resumed run repeats
  an uninterrupted one.
- Rank 0 logs, shows progress and writes resumable state (``stage1_resume``) into the run dir; a
  restart with the same run dir continues from the newest state.

With ``DistContext.single()`` the same loop runs in one process without any process group.
"""

import inspect
import logging
import os
import pathlib
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Tuple, Union

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from cosmo_edge.training.config import Stage1Config
from cosmo_edge.training.contrastive import fuse_views
from cosmo_edge.training.distributed import DistContext, all_reduce_sum, broadcast_object
from cosmo_edge.training.distributed_data import DRAWS, ShardedBatches, draw_step, seed_dropout
from cosmo_edge.training.global_contrastive import global_contrastive_loss
from cosmo_edge.training.stage1 import make_sgd, multistep_lr, set_lr
from cosmo_edge.training.stage1_resume import (
    ResumeError,
    check_fingerprint,
    latest_state,
    restore_state,
    save_state,
)
from cosmo_edge.training.sync_batchnorm import convert_sync_batchnorm, revert_sync_batchnorm

logger = logging.getLogger(__name__)

ENV_CHECKPOINT_EVERY = "COSMO_CHECKPOINT_EVERY"
StepCallback = Callable[[int, int, float], None]


@dataclass
class CheckpointOptions:
    """Where and how often rank 0 writes resumable state; ``run_dir = None``: never, and no resume."""

    run_dir: Optional[Union[str, pathlib.Path]] = None
    every_epochs: int = 1
    keep_last: int = 2
    fingerprint: Optional[Dict[str, Any]] = None  # config compared on resume (stage1_resume.fingerprint_of)
    resumed_from_epoch: int = 0  # set by train_stage1_distributed: epochs restored from the run dir

    @classmethod
    def from_env(cls, run_dir, fingerprint: Optional[Dict[str, Any]] = None) -> "CheckpointOptions":
        """Options for ``run_dir`` with ``COSMO_CHECKPOINT_EVERY`` (epochs, default 1) applied."""
        raw = os.environ.get(ENV_CHECKPOINT_EVERY, "1")
        try:
            every = int(raw)
        except ValueError as exc:
            raise ValueError(f"{ENV_CHECKPOINT_EVERY} must be a whole number of epochs, got {raw!r}") from exc
        return cls(run_dir=run_dir, every_epochs=max(1, every), fingerprint=fingerprint)


def wrap_ddp(model: nn.Module, ctx: DistContext) -> nn.Module:
    """DistributedDataParallel around ``model`` (already on ``ctx.device``); the model itself for one process.

    Buffers are copied from rank 0 once, at construction, not before every step: with synchronised
    BatchNorm every rank's running statistics are already the global ones.
    """
    if not ctx.active:
        return model
    device_ids = [ctx.device.index] if ctx.device.type == "cuda" else None
    if "forward_sync_buffers" in inspect.signature(DistributedDataParallel.__init__).parameters:
        return DistributedDataParallel(model, device_ids=device_ids, forward_sync_buffers=False)
    return DistributedDataParallel(model, device_ids=device_ids, broadcast_buffers=False)


def resume_if_possible(
    ctx: DistContext, checkpoints: CheckpointOptions, model: nn.Module, optimiser: torch.optim.Optimizer
) -> Tuple[int, List[Dict[str, Any]]]:
    """Rank 0 reads the newest state and checks it; every rank restores it. (0, []) when there is none."""
    if checkpoints.run_dir is None:
        return 0, []
    message: Dict[str, Any] = {"state": None, "error": None}
    if ctx.is_main:
        state = latest_state(checkpoints.run_dir)
        if state is not None:
            try:
                check_fingerprint(state, checkpoints.fingerprint)
                message["state"] = state
            except ResumeError as exc:  # tell every rank before raising, or they wait forever
                message["error"] = str(exc)
    message = broadcast_object(message, ctx)
    if message["error"] is not None:
        raise ResumeError(message["error"])
    if message["state"] is None:
        return 0, []
    epoch, history = restore_state(message["state"], model, optimiser)
    if ctx.is_main:
        logger.info(
            "resuming stage 1 after epoch %d (state written by %d processes, now %d)",
            epoch,
            message["state"]["world_size"],
            ctx.world_size,
        )
    return epoch, history


def train_epoch(
    net: nn.Module,
    optimiser: torch.optim.Optimizer,
    loader: ShardedBatches,
    inputs: Dict[str, torch.Tensor],
    config: Stage1Config,
    seed: int,
    epoch: int,
    ctx: DistContext,
    draws: str = "global",
) -> List[float]:
    """One epoch of SGD steps; returns the global loss of each step (reduced over ranks once, at the end)."""
    loader.set_epoch(epoch)
    seed_dropout(seed, epoch, ctx.rank)

    def forward(batch: Dict[str, torch.Tensor]) -> torch.Tensor:
        return net({m: x.to(ctx.device, non_blocking=True) for m, x in batch.items()})

    losses = []
    for step in loader.steps():
        projections, alphas = draw_step(forward, inputs, step, config, seed, epoch, draws)
        views = fuse_views(projections, alphas)
        loss = global_contrastive_loss(views, config.temperature, ctx.rank, ctx.world_size)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        losses.append(loss.detach())
    # Each rank's share L_r averages to the global loss: one all-reduce per epoch, not per step.
    totals = all_reduce_sum(torch.stack(losses), ctx) / ctx.world_size
    return [float(v) for v in totals.cpu()]


def train_stage1_distributed(
    model: nn.Module,
    inputs: Dict[str, torch.Tensor],
    config: Stage1Config,
    seed: int,
    ctx: DistContext,
    checkpoints: Optional[CheckpointOptions] = None,
    progress: bool = True,
    on_step: Optional[StepCallback] = None,
    draws: str = "global",
) -> List[Dict[str, Any]]:
    """Train ``model`` (a CosmoPretrainModel, identical on every rank) in place; one row per epoch.

    ``inputs`` are the full unlabeled tensors (every rank holds them; each trains on its shard).
    Rows: epoch, loss (global mean over the epoch's steps), lr, seconds. ``on_step(epoch, step,
    loss)`` is called on every rank with the global loss of each step, after the epoch. ``draws``:
    how augmentations and fusion weights are drawn (``distributed_data.DRAWS``). The model is left
    on ``ctx.device`` with plain BatchNorm modules.
    """
    if draws not in DRAWS:
        raise ValueError(f"draws must be one of {DRAWS}, got {draws!r}")
    checkpoints = checkpoints if checkpoints is not None else CheckpointOptions()
    n = next(iter(inputs.values())).shape[0]
    loader = ShardedBatches(n, min(config.batch_size, n), ctx.world_size, ctx.rank, seed)
    model.to(ctx.device)
    if ctx.active:
        convert_sync_batchnorm(model, ctx.device)
    optimiser = make_sgd(model.parameters(), config.lr, config.momentum, config.weight_decay)
    start_epoch, history = resume_if_possible(ctx, checkpoints, model, optimiser)
    checkpoints.resumed_from_epoch = start_epoch
    net = wrap_ddp(model, ctx)
    net.train()
    if ctx.is_main:
        logger.info(
            "stage 1 on %d process(es): %d samples, global batch %d (%d per process), %d steps per epoch",
            ctx.world_size,
            n,
            loader.global_batch,
            loader.local_batch,
            len(loader),
        )
    epochs = range(start_epoch + 1, config.epochs + 1)
    bar = tqdm(epochs, desc="stage 1", disable=not (progress and ctx.is_main), leave=False)
    for epoch in bar:
        started = time.perf_counter()
        lr = multistep_lr(config.lr, config.lr_milestones, config.lr_gamma, epoch)
        set_lr(optimiser, lr)
        step_losses = train_epoch(net, optimiser, loader, inputs, config, seed, epoch, ctx, draws)
        row = {"epoch": epoch, "loss": sum(step_losses) / len(step_losses), "lr": lr}
        row["seconds"] = time.perf_counter() - started
        history.append(row)
        bar.set_postfix(loss=f"{row['loss']:.4f}")
        if on_step is not None:
            for step, value in enumerate(step_losses):
                on_step(epoch, step, value)
        due = epoch % checkpoints.every_epochs == 0 or epoch == config.epochs
        if checkpoints.run_dir is not None and ctx.is_main and due:
            save_state(
                checkpoints.run_dir,
                epoch,
                model,
                optimiser,
                history,
                checkpoints.fingerprint,
                ctx.world_size,
                checkpoints.keep_last,
            )
    if ctx.active:
        revert_sync_batchnorm(model)
    if ctx.is_main:
        final = history[-1]["loss"] if history else float("nan")
        logger.info("stage 1: %d epochs, final loss %.4f", config.epochs, final)
    return history

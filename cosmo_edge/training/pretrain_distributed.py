"""``cosmo-edge pretrain`` under torchrun: stage 1 on every rank, QoM once, files written by rank 0.

``run_distributed(args, config)`` is what the ``pretrain`` command calls when torchrun started more
than one process (``distributed.is_enabled()``); it mirrors the single-process command: load and
split the data (rank 0 first, so a dataset cache is built once), stage 1 with
``stage1_distributed``, QoM, then the same run directory (config.json, split.json, stage1.pt,
qom.json, metrics.json, plus a ``distributed`` metrics section and ``stage1_state/``). Only the
Cosmo method is distributed: ``--method cmc`` / ``cpc`` under torchrun is refused with exit code 2.

QoM runs once over the whole unlabeled set: each rank extracts the features of a contiguous shard
(eval mode, synchronised running statistics, so the same features one process would compute),
rank 0 concatenates them in dataset order and runs ``compute_qom`` (the same code and seed as one
process), and broadcasts the record.
"""

import argparse
import logging
import os
import time
from typing import Dict, Optional, Tuple

import numpy as np
import torch

from cosmo_edge.training.config import QoMConfig, RunConfig
from cosmo_edge.training.data import ExperimentData
from cosmo_edge.training.distributed import (
    DistContext,
    all_gather_objects,
    barrier,
    broadcast_object,
    init_from_env,
    quiet_other_ranks,
    shutdown,
)
from cosmo_edge.training.distributed_data import DRAWS
from cosmo_edge.training.pipeline import PretrainResult, build_encoders_from_config
from cosmo_edge.training.qom import compute_qom
from cosmo_edge.training.stage1 import extract_features
from cosmo_edge.training.stage1_distributed import CheckpointOptions, train_stage1_distributed
from cosmo_edge.training.stage1_resume import fingerprint_of
from models.cosmo import CosmoPretrainModel

logger = logging.getLogger(__name__)

ENV_DRAWS = "COSMO_DIST_DRAWS"


def draws_from_env() -> str:
    """``COSMO_DIST_DRAWS`` (``global`` or ``sample``, see ``distributed_data``); default ``global``."""
    draws = os.environ.get(ENV_DRAWS, "global").strip().lower() or "global"
    if draws not in DRAWS:
        raise ValueError(f"{ENV_DRAWS} must be one of {DRAWS}, got {draws!r}")
    return draws


def shard_bounds(num_samples: int, world_size: int, rank: int) -> Tuple[int, int]:
    """[start, stop) of rank's contiguous share of ``num_samples`` rows (sizes differ by at most 1)."""
    base, extra = divmod(int(num_samples), int(world_size))
    start = rank * base + min(rank, extra)
    return start, start + base + (1 if rank < extra else 0)


def gather_features(
    model: CosmoPretrainModel, inputs: Dict[str, torch.Tensor], kind: str, ctx: DistContext
) -> Optional[Dict[str, np.ndarray]]:
    """``extract_features`` over all rows, computed shard by shard; the full arrays on rank 0, else None."""
    n = next(iter(inputs.values())).shape[0]
    start, stop = shard_bounds(n, ctx.world_size, ctx.rank)
    local: Dict[str, np.ndarray] = {}
    if stop > start:
        shard = {m: x[start:stop].to(ctx.device) for m, x in inputs.items()}
        local = extract_features(model, shard, kind=kind)
    parts = all_gather_objects(local, ctx)
    if not ctx.is_main:
        return None
    return {m: np.concatenate([p[m] for p in parts if p]) for m in model.modalities}


def distributed_qom(
    model: CosmoPretrainModel,
    inputs: Dict[str, torch.Tensor],
    num_classes: int,
    config: QoMConfig,
    seed: int,
    groups: Optional[np.ndarray],
    ctx: DistContext,
) -> Dict:
    """The QoM record ``compute_qom`` gives for the whole unlabeled set, on every rank."""
    features = gather_features(model, inputs, config.features, ctx)
    record = None
    if ctx.is_main:
        record = compute_qom(features, num_classes, config, seed=seed, groups=groups)
    return broadcast_object(record, ctx)


def pretrain_distributed(
    config: RunConfig,
    data: ExperimentData,
    ctx: DistContext,
    out_dir: Optional[str] = None,
    progress: bool = True,
) -> Tuple[PretrainResult, CheckpointOptions]:
    """``pipeline.pretrain`` over the ranks of ``ctx``: stage 1 (resumable in ``out_dir``), then QoM.

    Returns the result (model back on the CPU) and the checkpoint options, whose
    ``resumed_from_epoch`` says how many epochs came from the run directory.
    """
    torch.manual_seed(config.seed)
    encoders = build_encoders_from_config(config, data.input_shapes)
    model = CosmoPretrainModel(encoders, config.stage1.proj_dim, config.stage1.head_hidden)
    unlabeled = data.splits["unlabeled"][0]
    if out_dir is None:
        checkpoints = CheckpointOptions()
    else:
        checkpoints = CheckpointOptions.from_env(out_dir, fingerprint_of(config.to_dict()))
    draws = draws_from_env()
    started = time.perf_counter()
    history = train_stage1_distributed(
        model, unlabeled, config.stage1, config.seed, ctx, checkpoints, progress, draws=draws
    )
    stage1_s = time.perf_counter() - started
    started = time.perf_counter()
    groups = data.subjects["unlabeled"]
    qom = distributed_qom(model, unlabeled, data.num_classes, config.qom, config.seed, groups, ctx)
    qom_s = time.perf_counter() - started
    model.cpu()
    if ctx.is_main:
        logger.info("stage 1 %.1f s, QoM %.1f s, weights %s", stage1_s, qom_s, qom["weights"])
    return PretrainResult(model, qom, history, {"stage1": stage1_s, "qom": qom_s}), checkpoints


def load_data_main_first(
    config: RunConfig, ctx: DistContext
) -> Tuple[Optional[ExperimentData], Optional[str]]:
    """Rank 0 loads (and caches) the data first, then the others; (data, None) or (None, error line)."""
    from cosmo_edge.datasets import DataRootError
    from cosmo_edge.training.data import load_dataset, prepare_experiment

    def load() -> ExperimentData:
        return prepare_experiment(load_dataset(config.data, config.seed), config.data, config.seed)

    data, error = None, None
    if ctx.is_main:
        try:
            data = load()
        except DataRootError as exc:
            error = str(exc)
    error = broadcast_object(error, ctx)
    if error is None and not ctx.is_main:
        data = load()
    return data, error


def is_main_env() -> bool:
    """True for rank 0 (from torchrun's RANK), before any process group exists."""
    return os.environ.get("RANK", "0") == "0"


def run_distributed(args: argparse.Namespace, config: RunConfig) -> int:
    """The ``pretrain`` command on this rank: same outputs as one process, written by rank 0."""
    from cosmo_edge.training.rundir import save_pretrain, start_run, update_metrics
    from cosmo_edge.training.seeding import seed_everything

    method = getattr(args, "method", "cosmo")
    if method != "cosmo":  # the CMC / CPC baselines train in one process only
        if not is_main_env():
            return 2
        print(f"cosmo-edge pretrain: --method {method} runs in one process; start it without torchrun")
        return 2
    ctx = init_from_env()
    quiet_other_ranks(ctx)
    try:
        seed_everything(config.seed)
        data, error = load_data_main_first(config, ctx)
        if error is not None:
            if ctx.is_main:
                print(f"cosmo-edge pretrain: {error}")
            return 2
        if ctx.is_main:
            start_run(args.out, config, data)
        result, checkpoints = pretrain_distributed(config, data, ctx, args.out, progress=not args.no_progress)
        if ctx.is_main:
            path = save_pretrain(args.out, config, data, result)
            batch = min(config.stage1.batch_size, len(data.splits["unlabeled"][1]))
            update_metrics(
                args.out,
                "distributed",
                {
                    "processes": ctx.world_size,
                    "backend": ctx.backend,
                    "device": str(ctx.device),
                    "per_process_batch": -(-batch // ctx.world_size),
                    "resumed_from_epoch": checkpoints.resumed_from_epoch,
                },
            )
            weights = ", ".join(f"{m} {w:.3f}" for m, w in zip(data.modalities, result.qom["weights"]))
            final = result.history[-1]["loss"] if result.history else float("nan")
            print(
                f"stage 1: {config.stage1.epochs} epochs on {ctx.world_size} processes in "
                f"{result.seconds['stage1']:.1f} s, final loss {final:.4f}; QoM weights: {weights}"
            )
            print(f"checkpoint: {path}")
        barrier(ctx)
        return 0
    finally:
        shutdown(ctx)

"""Shared pieces of the distributed tests: gloo worker processes on free ports and what they run.

``spawn_gloo(body, world_size, out_dir)`` starts ``world_size`` processes with torchrun's environment
variables (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT) on a free local port, each joins
the gloo group through ``distributed.init_from_env`` and runs ``body(ctx, out_dir)``; the bodies
write what they computed to ``out_dir/rank<r>.pt`` for the test (in the parent) to compare with the
single-process computation.
"""

import os
import pathlib
import socket
from typing import Callable, Dict, Tuple

import numpy as np
import torch
import torch.multiprocessing as mp
import torch.nn.functional as F
from torch import nn

from cosmo_edge.datasets import make_synthetic_dataset
from cosmo_edge.preprocess import Normalization
from cosmo_edge.training.config import QoMConfig, Stage1Config
from cosmo_edge.training.distributed import (
    DistContext,
    all_gather_with_grad,
    all_reduce_with_grad,
    init_from_env,
    shutdown,
)
from cosmo_edge.training.global_contrastive import global_contrastive_loss
from cosmo_edge.training.pretrain_distributed import distributed_qom
from cosmo_edge.training.qom import compute_qom
from cosmo_edge.training.stage1 import extract_features
from cosmo_edge.training.stage1_distributed import train_stage1_distributed
from cosmo_edge.training.sync_batchnorm import GlobalBatchNorm
from models.cosmo import CosmoPretrainModel
from models.encoders import build_encoder

GATHER_ROWS, GATHER_DIM = 3, 5
BN_ROWS = (3, 5)  # GlobalBatchNorm: ranks may hold different numbers of samples
TEMPERATURE = 0.2


def free_port() -> int:
    """A TCP port that was free a moment ago on 127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _entry(rank: int, body: Callable, world_size: int, port: int, out_dir: str) -> None:
    os.environ.update(
        RANK=str(rank),
        WORLD_SIZE=str(world_size),
        LOCAL_RANK=str(rank),
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        COSMO_DIST_BACKEND="gloo",
    )
    torch.set_num_threads(1)
    ctx = init_from_env(timeout_s=120)
    try:
        body(ctx, out_dir)
    finally:
        shutdown(ctx)


def spawn_gloo(body: Callable, world_size: int, out_dir: pathlib.Path) -> Dict[int, Dict]:
    """Run ``body`` on ``world_size`` gloo processes; return each rank's saved results."""
    mp.spawn(_entry, args=(body, world_size, free_port(), str(out_dir)), nprocs=world_size, join=True)
    return {r: torch.load(str(out_dir / f"rank{r}.pt"), weights_only=False) for r in range(world_size)}


# --- collectives -------------------------------------------------------------------------------


def gather_inputs(world_size: int) -> torch.Tensor:
    """The full (world_size * GATHER_ROWS, GATHER_DIM) float64 tensor the ranks split by rows."""
    generator = torch.Generator().manual_seed(7)
    return torch.randn(world_size * GATHER_ROWS, GATHER_DIM, generator=generator, dtype=torch.float64)


def gather_objective(gathered: torch.Tensor, rank: int) -> torch.Tensor:
    """A rank's loss that uses its own rows and everyone's (cross terms, rank-dependent weights)."""
    own = gathered[rank * GATHER_ROWS : (rank + 1) * GATHER_ROWS]
    return (own @ gathered.t()).logsumexp(dim=1).sum() + 0.1 * (rank + 1) * gathered.pow(3).sum()


def bn_inputs(world_size: int, dims: int) -> torch.Tensor:
    """(sum(BN_ROWS), 4, 6[, 5]) float64 inputs for the BatchNorm comparison."""
    generator = torch.Generator().manual_seed(11)
    shape = (sum(BN_ROWS[:world_size]), 4, 6) + ((5,) if dims == 4 else ())
    return 2.0 + 3.0 * torch.randn(shape, generator=generator, dtype=torch.float64)


def bn_weights(x: torch.Tensor) -> torch.Tensor:
    """Fixed per-element weights that turn BatchNorm outputs into a scalar loss."""
    generator = torch.Generator().manual_seed(13)
    return torch.randn(x.shape, generator=generator, dtype=torch.float64)


def view_model() -> nn.Module:
    """A small linear model whose outputs become (N, P=3, 4) views."""
    torch.manual_seed(5)
    return nn.Linear(GATHER_DIM, 12).double()


def model_views(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return F.normalize(model(x).reshape(len(x), 3, 4), dim=-1)


def collectives_body(ctx: DistContext, out_dir: str) -> None:
    """All-gather gradients (both backward modes), DDP + gather + loss, GlobalBatchNorm."""
    results: Dict = {}
    full = gather_inputs(ctx.world_size)
    rows = slice(ctx.rank * GATHER_ROWS, (ctx.rank + 1) * GATHER_ROWS)
    for mode in ("all_reduce", "reduce_scatter"):
        local = full[rows].clone().requires_grad_(True)
        gathered = all_gather_with_grad(local, backward=mode)
        gather_objective(gathered, ctx.rank).backward()
        results[f"gather-{mode}"] = {"gathered": gathered.detach(), "grad": local.grad}
    local = full[rows].clone().requires_grad_(True)
    summed = all_reduce_with_grad(local)
    (summed.sin() * (ctx.rank + 1)).sum().backward()
    results["all_reduce"] = {"sum": summed.detach(), "grad": local.grad}
    model = view_model()
    ddp = torch.nn.parallel.DistributedDataParallel(model)
    loss = global_contrastive_loss(model_views(ddp, full[rows]), TEMPERATURE, ctx.rank, ctx.world_size)
    loss.backward()
    results["ddp"] = {"loss": loss.detach(), "grads": [p.grad.clone() for p in model.parameters()]}
    for dims, momentum in ((3, 0.1), (4, None)):
        x_full = bn_inputs(ctx.world_size, dims)
        start = sum(BN_ROWS[: ctx.rank])
        x = x_full[start : start + BN_ROWS[ctx.rank]].clone().requires_grad_(True)
        bn = GlobalBatchNorm(4, momentum=momentum).double()
        with torch.no_grad():
            bn.weight.copy_(torch.linspace(0.5, 2.0, 4))
            bn.bias.copy_(torch.linspace(-1.0, 1.0, 4))
        out = bn(x)
        (out * bn_weights(x_full)[start : start + len(x)]).sum().backward()
        results[f"bn{dims}"] = {
            "out": out.detach(),
            "grad": x.grad,
            "weight_grad": bn.weight.grad,
            "bias_grad": bn.bias.grad,
            "running_mean": bn.running_mean.clone(),
            "running_var": bn.running_var.clone(),
        }
    torch.save(results, os.path.join(out_dir, f"rank{ctx.rank}.pt"))


# --- stage-1 training ---------------------------------------------------------------------------


def training_setup(
    dtype: torch.dtype = torch.float32, dropout: float = 0.0
) -> Tuple[CosmoPretrainModel, Dict[str, torch.Tensor], Stage1Config, np.ndarray]:
    """A small stage-1 problem: 32 synthetic samples, imu + skeleton; no dropout by default (masks are
    drawn per rank, so runs on different world sizes only agree without it)."""
    ds = make_synthetic_dataset(num_classes=4, num_subjects=2, trials_per_subject_class=4, seed=3)
    inputs = Normalization().fit(ds.inputs).apply(ds.inputs)
    tensors = {m: torch.from_numpy(np.ascontiguousarray(x)).to(dtype) for m, x in inputs.items()}
    torch.manual_seed(0)
    encoders = nn.ModuleDict(
        {
            m: build_encoder(m, tuple(x.shape[1:]), channels=(16, 24), dropout=dropout)
            for m, x in tensors.items()
        }
    )
    model = CosmoPretrainModel(encoders, proj_dim=16, head_hidden=32).to(dtype)
    config = Stage1Config(epochs=3, batch_size=16, num_views=4, lr=0.05, lr_milestones=[2], lr_gamma=0.5)
    return model, tensors, config, ds.subjects


QOM_CONFIG = QoMConfig(pca_dims=4, hopkins_repeats=2, k_max=5, kmeans_n_init=2)
SEED = 4


# Variants of the equivalence run: (dtype, draws, augment copies).
VARIANTS = {
    "float64": (torch.float64, "global", 1),
    "float64-sample-draws": (torch.float64, "sample", 1),
    "float64-two-copies": (torch.float64, "global", 2),
    "float32": (torch.float32, "global", 1),
}


def train(ctx: DistContext, variant: str = "float32") -> Dict:
    """Train the setup on ``ctx``; return step losses, history, the final state dict and the model."""
    dtype, draws, copies = VARIANTS[variant]
    model, inputs, config, _ = training_setup(dtype)
    config.augment_copies = copies
    steps = []
    history = train_stage1_distributed(
        model, inputs, config, SEED, ctx, progress=False, on_step=lambda e, s, v: steps.append(v), draws=draws
    )
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    return {"steps": steps, "history": history, "state": state, "model": model}


def training_body(ctx: DistContext, out_dir: str) -> None:
    """Stage 1 on the ranks (every variant), then QoM distributed and (rank 0) of one process, same model."""
    result = {variant: train(ctx, variant) for variant in VARIANTS}
    model = result["float32"]["model"]
    for run in result.values():
        run.pop("model")
    _, inputs, _, subjects = training_setup()
    result["qom"] = distributed_qom(model, inputs, 4, QOM_CONFIG, SEED, subjects, ctx)
    if ctx.is_main:
        features = extract_features(model, inputs, kind=QOM_CONFIG.features)
        result["qom_single"] = compute_qom(features, 4, QOM_CONFIG, seed=SEED, groups=subjects)
    torch.save(result, os.path.join(out_dir, f"rank{ctx.rank}.pt"))

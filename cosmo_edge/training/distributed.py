"""Process groups for stage 1 on several processes (one per GPU, or per CPU slot), and their collectives.

``torchrun`` starts one process per slot and tells each, in the environment, who it is: ``RANK``
(global index), ``WORLD_SIZE`` (number of processes), ``LOCAL_RANK`` (index on this node) and
``MASTER_ADDR`` / ``MASTER_PORT`` (the rendezvous). ``init_from_env`` joins the group with NCCL when
CUDA is there (one GPU per process, ``cuda:LOCAL_RANK``) and gloo on CPUs; ``COSMO_DIST_BACKEND``
overrides the choice. Without torchrun (or with one process) nothing is initialised and
``DistContext.single()`` describes the lone process, so the same training code runs either way.

Collectives that keep the autograd graph: ``all_gather_with_grad`` concatenates every rank's
tensor and its backward sums the incoming gradient over ranks and returns this rank's slice;
``all_reduce_with_grad`` sums and its backward sums again. With DistributedDataParallel averaging
the parameter gradients over N ranks, a loss whose per-rank parts add up to N times the global
loss then gets exactly the single-process gradient (docs/distributed.md, "the maths").
"""

import datetime
import logging
import os
from dataclasses import dataclass, field
from typing import Any, List, Mapping, Optional

import torch
import torch.distributed as dist
from torch.autograd import Function

logger = logging.getLogger(__name__)

ENV_BACKEND = "COSMO_DIST_BACKEND"
BACKENDS = ("nccl", "gloo")
GATHER_BACKWARDS = ("auto", "all_reduce", "reduce_scatter")
DEFAULT_TIMEOUT_S = 1800.0


class DistributedSetupError(RuntimeError):
    """The torchrun environment is incomplete or asks for something this machine cannot do."""


@dataclass(frozen=True)
class DistContext:
    """Who this process is: rank, world size, local rank, backend (None: no group) and device."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: Optional[str] = None
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @classmethod
    def single(cls, device: Optional[torch.device] = None) -> "DistContext":
        """The context of a lone process (no process group)."""
        return cls(device=torch.device(device) if device is not None else torch.device("cpu"))

    @property
    def is_main(self) -> bool:
        """True on rank 0, the process that logs, writes files and runs QoM."""
        return self.rank == 0

    @property
    def active(self) -> bool:
        """True when there are other processes to talk to."""
        return self.world_size > 1 and self.backend is not None


def env_world_size(environ: Optional[Mapping[str, str]] = None) -> int:
    """``WORLD_SIZE`` from the environment (1 when unset)."""
    environ = os.environ if environ is None else environ
    raw = environ.get("WORLD_SIZE", "1")
    try:
        return int(raw)
    except ValueError as exc:
        raise DistributedSetupError(f"WORLD_SIZE must be an integer, got {raw!r}") from exc


def is_enabled(environ: Optional[Mapping[str, str]] = None) -> bool:
    """True when launched with more than one process (torchrun sets WORLD_SIZE > 1)."""
    return env_world_size(environ) > 1


def choose_backend(environ: Optional[Mapping[str, str]] = None) -> str:
    """``COSMO_DIST_BACKEND`` if set, else NCCL when CUDA and NCCL are available, else gloo."""
    environ = os.environ if environ is None else environ
    forced = environ.get(ENV_BACKEND, "").strip().lower()
    if forced:
        if forced not in BACKENDS:
            raise DistributedSetupError(f"{ENV_BACKEND} must be one of {BACKENDS}, got {forced!r}")
        if forced == "nccl" and not (torch.cuda.is_available() and dist.is_nccl_available()):
            raise DistributedSetupError(f"{ENV_BACKEND}=nccl but CUDA or NCCL is not available here")
        return forced
    if torch.cuda.is_available() and dist.is_nccl_available():
        return "nccl"
    return "gloo"


def _env_int(environ: Mapping[str, str], name: str) -> int:
    if name not in environ:
        raise DistributedSetupError(f"{name} is not set; launch with torchrun (docs/distributed.md)")
    try:
        return int(environ[name])
    except ValueError as exc:
        raise DistributedSetupError(f"{name} must be an integer, got {environ[name]!r}") from exc


def init_from_env(timeout_s: float = DEFAULT_TIMEOUT_S) -> DistContext:
    """Join the process group described by torchrun's environment; return this process's context.

    NCCL: the process drives ``cuda:LOCAL_RANK`` (set as the current device before joining).
    gloo: the process trains on the CPU. The rendezvous is ``env://`` (under torchrun it reuses the
    agent's store). ``timeout_s`` bounds how long a collective waits for a rank that died
    (torchrun's agent normally stops the others first).
    """
    environ = os.environ
    if not dist.is_available():
        raise DistributedSetupError("this torch build has no torch.distributed")
    rank, world_size = _env_int(environ, "RANK"), _env_int(environ, "WORLD_SIZE")
    local_rank = int(environ.get("LOCAL_RANK", "0"))
    if "MASTER_ADDR" not in environ:
        raise DistributedSetupError("MASTER_ADDR is not set; launch with torchrun (docs/distributed.md)")
    _env_int(environ, "MASTER_PORT")
    if not 0 <= rank < world_size:
        raise DistributedSetupError(f"RANK {rank} is outside 0..{world_size - 1}")
    backend = choose_backend(environ)
    device = torch.device("cpu")
    if backend == "nccl":
        if local_rank >= torch.cuda.device_count():
            raise DistributedSetupError(
                f"LOCAL_RANK {local_rank} but only {torch.cuda.device_count()} GPUs here; "
                "start at most one process per GPU (--nproc_per_node)"
            )
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group(
            backend=backend,
            init_method="env://",
            rank=rank,
            world_size=world_size,
            timeout=datetime.timedelta(seconds=timeout_s),
        )
    ctx = DistContext(rank=rank, world_size=world_size, local_rank=local_rank, backend=backend, device=device)
    if ctx.is_main:
        logger.info("process group: %d processes, backend %s, rank 0 on %s", world_size, backend, device)
    return ctx


def shutdown(ctx: DistContext) -> None:
    """Leave the process group (no-op for a lone process)."""
    if ctx.active and dist.is_initialized():
        dist.destroy_process_group()


def quiet_other_ranks(ctx: DistContext) -> None:
    """Rank-0 logging: other ranks only log warnings and errors."""
    if not ctx.is_main:
        logging.getLogger().setLevel(logging.WARNING)


def barrier(ctx: DistContext) -> None:
    """Wait for every rank (no-op for a lone process)."""
    if not ctx.active:
        return
    if ctx.backend == "nccl":
        dist.barrier(device_ids=[ctx.device.index])
    else:
        dist.barrier()


def broadcast_object(obj: Any, ctx: DistContext, src: int = 0) -> Any:
    """Rank ``src``'s picklable ``obj`` on every rank (the argument is ignored elsewhere)."""
    if not ctx.active:
        return obj
    holder = [obj if ctx.rank == src else None]
    dist.broadcast_object_list(holder, src=src, device=ctx.device if ctx.backend == "nccl" else None)
    return holder[0]


def all_gather_objects(obj: Any, ctx: DistContext) -> List[Any]:
    """Every rank's picklable ``obj``, in rank order, on every rank."""
    if not ctx.active:
        return [obj]
    gathered: List[Any] = [None] * ctx.world_size
    dist.all_gather_object(gathered, obj)
    return gathered


def all_reduce_sum(tensor: torch.Tensor, ctx: DistContext) -> torch.Tensor:
    """Sum of ``tensor`` over ranks, outside autograd (a new tensor; the input is untouched)."""
    out = tensor.detach().clone()
    if ctx.active:
        dist.all_reduce(out, op=dist.ReduceOp.SUM)
    return out


class _AllGatherSumGrad(Function):
    """All-gather along dim 0; backward = sum of the gradients over ranks, this rank's rows."""

    @staticmethod
    def forward(ctx, tensor: torch.Tensor, group: Any, use_reduce_scatter: bool) -> torch.Tensor:
        tensor = tensor.contiguous()
        world_size = dist.get_world_size(group=group)
        parts = [torch.empty_like(tensor) for _ in range(world_size)]
        dist.all_gather(parts, tensor, group=group)
        ctx.group = group
        ctx.rows = tensor.shape[0]
        ctx.use_reduce_scatter = use_reduce_scatter
        return torch.cat(parts, dim=0)

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor):
        grad_output = grad_output.contiguous()
        rank = dist.get_rank(group=ctx.group)
        if ctx.use_reduce_scatter:
            chunks = list(grad_output.split(ctx.rows, dim=0))
            grad = torch.empty_like(chunks[rank])
            dist.reduce_scatter(grad, chunks, op=dist.ReduceOp.SUM, group=ctx.group)
        else:
            summed = grad_output.clone()
            dist.all_reduce(summed, op=dist.ReduceOp.SUM, group=ctx.group)
            grad = summed[rank * ctx.rows : (rank + 1) * ctx.rows].clone()
        return grad, None, None


class _AllReduceSumGrad(Function):
    """Sum over ranks; backward = sum of the incoming gradients over ranks."""

    @staticmethod
    def forward(ctx, tensor: torch.Tensor, group: Any) -> torch.Tensor:
        ctx.group = group
        out = tensor.clone(memory_format=torch.contiguous_format)
        dist.all_reduce(out, op=dist.ReduceOp.SUM, group=group)
        return out

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor):
        grad = grad_output.clone(memory_format=torch.contiguous_format)
        dist.all_reduce(grad, op=dist.ReduceOp.SUM, group=ctx.group)
        return grad, None


def _use_reduce_scatter(mode: str, group: Any) -> bool:
    if mode not in GATHER_BACKWARDS:
        raise ValueError(f"gather backward must be one of {GATHER_BACKWARDS}, got {mode!r}")
    if mode == "auto":
        return dist.get_backend(group) == "nccl"
    return mode == "reduce_scatter"


def all_gather_with_grad(tensor: torch.Tensor, group: Any = None, backward: str = "auto") -> torch.Tensor:
    """Concatenate every rank's ``tensor`` along dim 0 (rank order), keeping the autograd graph.

    Every rank must pass the same shape. The backward sums the gradient of the gathered tensor over
    ranks and returns this rank's rows: the rows are used by every rank's loss, so their gradient is
    the sum of all those uses. ``backward``: ``reduce_scatter`` (half the traffic; the default on
    NCCL), ``all_reduce`` + slice (works on every backend; the default elsewhere), or ``auto``.
    Without an initialised group of more than one process, returns ``tensor`` unchanged.
    """
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size(group=group) == 1:
        return tensor
    return _AllGatherSumGrad.apply(tensor, group, _use_reduce_scatter(backward, group))


def all_reduce_with_grad(tensor: torch.Tensor, group: Any = None) -> torch.Tensor:
    """Sum of ``tensor`` over ranks with a summing backward (identity for a lone process)."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size(group=group) == 1:
        return tensor
    return _AllReduceSumGrad.apply(tensor, group)

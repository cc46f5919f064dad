"""BatchNorm over the global batch of all ranks, on CPUs (gloo) as well as GPUs.

Each rank holds 1/N of the batch; plain BatchNorm would normalise with that shard's statistics, so
N processes would train a different model from one process with the whole batch. On CUDA,
``torch.nn.SyncBatchNorm`` does the job. Its forward refuses CPU tensors, so for gloo
``GlobalBatchNorm`` gathers every rank's per-channel (mean, sum of squared deviations, count) with a
differentiable all-gather (one collective forward, one backward), combines them into the global mean
and (biased) variance, and normalises with them; the running statistics get the same update as
BatchNorm on the whole batch (unbiased variance, momentum or cumulative average).

``convert_sync_batchnorm(module, device)`` swaps every BatchNorm{1,2,3}d for the right kind in place
(weights, buffers and train/eval mode copied; parameters are new objects, so build the optimiser
after converting) and ``revert_sync_batchnorm`` swaps them back, leaving plain modules that save
and export as before. State-dict keys do not change.
"""

import logging
from typing import List, Optional

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from cosmo_edge.training.distributed import all_gather_with_grad

logger = logging.getLogger(__name__)

PLAIN_BATCHNORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


class GlobalBatchNorm(_BatchNorm):
    """BatchNorm whose training-mode statistics span every rank of ``process_group`` (any device).

    Outside training, or without an initialised group of more than one process, it is plain
    BatchNorm. Ranks may hold different numbers of samples.
    """

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: Optional[float] = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
        process_group=None,
    ) -> None:
        super().__init__(num_features, eps, momentum, affine, track_running_stats)
        self.process_group = process_group

    def _check_input_dim(self, x: torch.Tensor) -> None:
        if x.dim() < 2:
            raise ValueError(f"expected at least 2-D input (N, C, ...), got {x.dim()}-D")

    def _synchronised(self) -> bool:
        return (
            self.training
            and dist.is_available()
            and dist.is_initialized()
            and dist.get_world_size(self.process_group) > 1
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, ...) -> normalised (N, C, ...) with the statistics of all ranks' batches."""
        if not self._synchronised():
            return super().forward(x)
        self._check_input_dim(x)
        channels = x.shape[1]
        dims = [0] + list(range(2, x.dim()))
        shape = [1, channels] + [1] * (x.dim() - 2)
        local_count = x.numel() // channels
        # Each rank's (mean, sum of squared deviations, count) per channel, gathered with gradients in
        # one collective and combined exactly (Chan et al.'s parallel variance), as torch's
        # SyncBatchNorm does on GPUs: numerically like one pass over the whole batch.
        local_mean = x.sum(dim=dims) / max(local_count, 1)
        local_m2 = (x - local_mean.reshape(shape)).pow(2).sum(dim=dims)
        count_column = torch.full((1,), float(local_count), dtype=x.dtype, device=x.device)
        stats = torch.cat([local_mean, local_m2, count_column]).unsqueeze(0)
        gathered = all_gather_with_grad(stats, group=self.process_group)  # (ranks, 2C + 1)
        means, m2s, counts = gathered[:, :channels], gathered[:, channels:-1], gathered[:, -1:].detach()
        count = counts.sum()
        if float(count) < 2:
            raise ValueError(
                f"BatchNorm needs more than 1 value per channel over all ranks, got {int(count)}"
            )
        mean = (counts * means).sum(dim=0) / count
        var = (m2s + counts * (means - mean).pow(2)).sum(dim=0) / count
        centred = x - mean.reshape(shape)
        out = centred * torch.rsqrt(var + self.eps).reshape(shape)
        if self.affine:
            out = out * self.weight.reshape(shape) + self.bias.reshape(shape)
        if self.track_running_stats:
            self._update_running_stats(mean.detach(), var.detach(), count)
        return out

    @torch.no_grad()
    def _update_running_stats(self, mean: torch.Tensor, var: torch.Tensor, count: torch.Tensor) -> None:
        """The update BatchNorm makes: momentum (or cumulative when None), unbiased variance."""
        self.num_batches_tracked.add_(1)
        factor = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
        unbiased = var * (count / (count - 1))
        self.running_mean.mul_(1 - factor).add_(mean.to(self.running_mean.dtype), alpha=factor)
        self.running_var.mul_(1 - factor).add_(unbiased.to(self.running_var.dtype), alpha=factor)


def _copy_into(source: _BatchNorm, target: _BatchNorm) -> _BatchNorm:
    """Give ``target`` the device, dtype, parameters, buffers, mode and requires_grad flags of ``source``."""
    floats = [t for t in list(source.parameters()) + list(source.buffers()) if t.is_floating_point()]
    if floats:
        target = target.to(device=floats[0].device, dtype=floats[0].dtype)
    with torch.no_grad():
        if source.affine:
            target.weight.copy_(source.weight)
            target.bias.copy_(source.bias)
            target.weight.requires_grad_(source.weight.requires_grad)
            target.bias.requires_grad_(source.bias.requires_grad)
        if source.track_running_stats:
            target.running_mean.copy_(source.running_mean)
            target.running_var.copy_(source.running_var)
            target.num_batches_tracked.copy_(source.num_batches_tracked)
    target.train(source.training)
    return target


def _swap(module: nn.Module, make, predicate) -> nn.Module:
    """Replace every child (recursively) that satisfies ``predicate`` with ``make(child)``."""
    if predicate(module):
        return make(module)
    for name, child in module.named_children():
        replaced = _swap(child, make, predicate)
        if replaced is not child:
            setattr(module, name, replaced)
    return module


def convert_sync_batchnorm(
    module: nn.Module, device: Optional[torch.device] = None, process_group=None
) -> nn.Module:
    """Swap BatchNorm{1,2,3}d for synchronised BatchNorm: torch's on CUDA, ``GlobalBatchNorm`` elsewhere.

    Modifies ``module`` in place and returns it (or the replacement if ``module`` itself is one).
    """
    use_torch = device is not None and torch.device(device).type == "cuda"
    target = nn.SyncBatchNorm if use_torch else GlobalBatchNorm

    def make(bn: _BatchNorm) -> _BatchNorm:
        synced = target(
            bn.num_features, bn.eps, bn.momentum, bn.affine, bn.track_running_stats, process_group
        )
        synced._plain_class = type(bn)
        return _copy_into(bn, synced)

    return _swap(module, make, lambda m: isinstance(m, PLAIN_BATCHNORMS))


def revert_sync_batchnorm(module: nn.Module) -> nn.Module:
    """Undo ``convert_sync_batchnorm``: each synchronised BatchNorm back to the class it replaced."""

    def make(bn: _BatchNorm) -> _BatchNorm:
        plain_class = getattr(bn, "_plain_class", None)
        if plain_class is None:
            raise TypeError(f"{type(bn).__name__} was not made by convert_sync_batchnorm; cannot revert")
        plain = plain_class(bn.num_features, bn.eps, bn.momentum, bn.affine, bn.track_running_stats)
        return _copy_into(bn, plain)

    return _swap(module, make, lambda m: isinstance(m, (GlobalBatchNorm, nn.SyncBatchNorm)))


def synchronised_batchnorms(module: nn.Module) -> List[str]:
    """Names of the synchronised BatchNorm modules inside ``module`` (for logs and tests)."""
    return [name for name, m in module.named_modules() if isinstance(m, (GlobalBatchNorm, nn.SyncBatchNorm))]

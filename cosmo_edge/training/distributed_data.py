"""Which samples each rank trains on, and how each step's random views are drawn on N ranks.

``ShardedBatches`` wraps torch's ``DistributedSampler``: every epoch one permutation of the n samples
(seeded by the run seed, reshuffled by ``set_epoch``), padded to a multiple of the world size, and
rank r takes every world_size-th index of it. Cut into per-rank batches of
``global_batch / world_size``, step s of all ranks together is exactly step s of a lone process with
the whole global batch, in the same order (``Step.global_index``; for n divisible by the world size,
otherwise the padding repeats up to world_size - 1 samples once per epoch, as torch's sampler does).

``draw_step`` makes a step's projections and fusion weights in one of two ways (``DRAWS``):

- ``global`` (default): every rank augments the whole global batch with one generator seeded by
  (seed, epoch, step), draws the fusion weights of the whole global batch the same way (the draws of
  ``stage1.train_stage1``: ``project_copies`` + ``sample_fusion_weights``), and keeps its own rows.
  Vectorised, but each rank augments all N*B samples.
- ``sample``: each sample is augmented, and its weights drawn, with generators seeded by
  (seed, epoch, sample index). Each rank only draws for its own B samples, one sample at a time
  (about 0.7 ms of overhead per sample for imu + skeleton here); worth it with many ranks or with
  depth, whose augmentation costs about 5 ms per sample.

Either way the views do not depend on the world size (N ranks see the views one process sees) and a
resumed run sees the views of an uninterrupted one; the two modes draw different (equally valid)
random numbers from each other.
"""

import logging
import math
from dataclasses import dataclass
from typing import Callable, Dict, List, Tuple

import numpy as np
import torch
from torch.utils.data.distributed import DistributedSampler

from cosmo_edge.training.augment import augment_batch
from cosmo_edge.training.config import Stage1Config
from cosmo_edge.training.contrastive import sample_fusion_weights
from cosmo_edge.training.seeding import torch_generator
from cosmo_edge.training.stage1 import project_copies

logger = logging.getLogger(__name__)

DRAWS = ("global", "sample")
# Independent random streams: per sample (draws "sample"), per step (draws "global"), dropout.
AUGMENT_SAMPLE, FUSION_SAMPLE, AUGMENT_STEP, FUSION_STEP, DROPOUT = range(5)
_SEED_MOD = 2**63
Forward = Callable[[Dict[str, torch.Tensor]], torch.Tensor]


def keyed_seed(seed: int, *keys: int) -> int:
    """A 64-bit seed derived from the run seed and non-negative integer keys (SeedSequence mixing)."""
    entropy = [int(seed) % _SEED_MOD] + [int(k) for k in keys]
    return int(np.random.SeedSequence(entropy).generate_state(1, np.uint64)[0])


@dataclass
class Step:
    """One step: this rank's samples, and all ranks' samples in single-process order."""

    number: int  # 0-based step within the epoch, the same on every rank
    index: np.ndarray  # this rank's sample indices
    global_index: np.ndarray  # every rank's samples, as one process would batch them
    own_rows: np.ndarray  # positions of ``index`` inside ``global_index``


class ShardedBatches:
    """Per-rank steps of one epoch; call ``set_epoch(epoch)`` before iterating.

    ``global_batch`` is the batch of all ranks together (the recipe's ``stage1.batch_size``); each
    rank takes ``ceil(global_batch / world_size)``. Every rank yields the same number of steps. A
    lone process never yields a batch of one sample (it joins the previous batch, as
    ``batching.batch_indices`` does, for BatchNorm).
    """

    def __init__(
        self, num_samples: int, global_batch: int, world_size: int = 1, rank: int = 0, seed: int = 0
    ):
        if num_samples < 2:
            raise ValueError(f"need at least 2 training samples, got {num_samples}")
        if global_batch < 2:
            raise ValueError(f"global batch must be >= 2 for BatchNorm training, got {global_batch}")
        self.num_samples = int(num_samples)
        self.world_size = int(world_size)
        self.rank = int(rank)
        self.local_batch = max(1, math.ceil(global_batch / world_size))
        if self.local_batch * world_size != global_batch:
            logger.warning(
                "global batch %d is not a multiple of %d processes: using %d per process (%d in all)",
                global_batch,
                world_size,
                self.local_batch,
                self.local_batch * world_size,
            )
        # One sampler per rank: every rank knows the whole global batch of each step.
        self.samplers = [
            DistributedSampler(
                range(self.num_samples), world_size, r, shuffle=True, seed=seed, drop_last=False
            )
            for r in range(world_size)
        ]

    @property
    def global_batch(self) -> int:
        """Samples per full step over all ranks."""
        return self.local_batch * self.world_size

    def set_epoch(self, epoch: int) -> None:
        """Reshuffle: the permutation depends on (seed, epoch) only."""
        for sampler in self.samplers:
            sampler.set_epoch(epoch)

    def _rank_batches(self, rank: int) -> List[np.ndarray]:
        order = np.fromiter(iter(self.samplers[rank]), dtype=np.int64)
        batches = [order[i : i + self.local_batch] for i in range(0, len(order), self.local_batch)]
        if self.world_size == 1 and len(batches) > 1 and len(batches[-1]) == 1:
            batches[-2] = np.concatenate([batches[-2], batches[-1]])
            batches.pop()
        return batches

    def steps(self) -> List[Step]:
        """This rank's steps for the current epoch."""
        per_rank = [self._rank_batches(r) for r in range(self.world_size)]
        steps = []
        for number, parts in enumerate(zip(*per_rank)):
            # The sampler hands out the padded permutation round-robin: interleaving undoes it.
            global_index = np.stack(parts, axis=1).reshape(-1)
            own_rows = np.arange(self.rank, len(global_index), self.world_size)
            steps.append(Step(number, parts[self.rank], global_index, own_rows))
        return steps

    def __len__(self) -> int:
        return len(self._rank_batches(self.rank))


def _weights(count: int, num_inputs: int, config: Stage1Config, rng: np.random.Generator) -> torch.Tensor:
    return sample_fusion_weights(
        count,
        config.num_views,
        num_inputs,
        config.weights,
        rng,
        config.dirichlet_alpha,
        config.dirichlet_scope,
    )


def draw_step(
    forward: Forward,
    inputs: Dict[str, torch.Tensor],
    step: Step,
    config: Stage1Config,
    seed: int,
    epoch: int,
    draws: str = "global",
) -> Tuple[torch.Tensor, torch.Tensor]:
    """(projections (B, M * copies, d), fusion weights (B, P, M * copies)) of this rank's samples.

    ``forward`` maps a CPU batch of this rank's samples to projections (moving it to the device).
    """
    if draws == "global":
        rows = torch.from_numpy(step.own_rows)

        def own_rows_forward(batch: Dict[str, torch.Tensor]) -> torch.Tensor:
            return forward({m: x[rows] for m, x in batch.items()})

        whole = len(step.own_rows) == len(step.global_index)
        generator = torch_generator(keyed_seed(seed, AUGMENT_STEP, epoch, step.number))
        batch = {m: x[step.global_index] for m, x in inputs.items()}
        projections = project_copies(forward if whole else own_rows_forward, batch, config, generator)
        rng = np.random.default_rng(keyed_seed(seed, FUSION_STEP, epoch, step.number))
        alphas = _weights(len(step.global_index), projections.shape[1], config, rng)
        return projections, alphas[rows]
    if draws != "sample":
        raise ValueError(f"draws must be one of {DRAWS}, got {draws!r}")
    generators = [torch_generator(keyed_seed(seed, AUGMENT_SAMPLE, epoch, int(i))) for i in step.index]
    batch = {m: x[step.index] for m, x in inputs.items()}
    copies = []
    for _ in range(max(1, config.augment_copies)):  # as stage1.project_copies, one sample at a time
        augmented = [
            augment_batch({m: x[r : r + 1] for m, x in batch.items()}, config.augment, generator)
            for r, generator in enumerate(generators)
        ]
        copies.append(forward({m: torch.cat([one[m] for one in augmented]) for m in batch}))
    projections = torch.cat(copies, dim=1)
    if config.weights == "fixed" or config.dirichlet_scope == "batch":  # one draw shared by the step
        rng = np.random.default_rng(keyed_seed(seed, FUSION_STEP, epoch, step.number))
        return projections, _weights(len(step.index), projections.shape[1], config, rng)
    rngs = [np.random.default_rng(keyed_seed(seed, FUSION_SAMPLE, epoch, int(i))) for i in step.index]
    alphas = [_weights(1, projections.shape[1], config, rng) for rng in rngs]
    return projections, torch.cat(alphas)


def seed_dropout(seed: int, epoch: int, rank: int) -> None:
    """Reseed torch's global RNG (dropout masks) from (seed, epoch, rank) at the start of an epoch.

    A resumed run then draws the same masks as an uninterrupted one, whatever the world size was.
    """
    torch.manual_seed(keyed_seed(seed, DROPOUT, epoch, rank))

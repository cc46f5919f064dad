"""Sharded steps and the two ways of drawing views: N ranks see the samples and views of one process."""

import numpy as np
import pytest
import torch

from cosmo_edge.training.config import Stage1Config
from cosmo_edge.training.distributed_data import ShardedBatches, draw_step, keyed_seed


def all_rank_steps(n: int, global_batch: int, world: int, seed: int, epoch: int):
    loaders = [ShardedBatches(n, global_batch, world, r, seed) for r in range(world)]
    for loader in loaders:
        loader.set_epoch(epoch)
    return [loader.steps() for loader in loaders]


@pytest.mark.parametrize("n,global_batch,world", [(32, 16, 2), (48, 12, 4), (30, 8, 2)])
def test_ranks_together_make_the_single_process_batches(n: int, global_batch: int, world: int) -> None:
    single = all_rank_steps(n, global_batch, 1, seed=3, epoch=2)[0]
    per_rank = all_rank_steps(n, global_batch, world, seed=3, epoch=2)
    assert len({len(s) for s in per_rank}) == 1  # every rank takes the same number of steps
    assert len(per_rank[0]) == len(single)
    for number, expected in enumerate(single):
        for r in range(world):
            step = per_rank[r][number]
            assert step.number == number
            np.testing.assert_array_equal(step.global_index, expected.global_index)  # same order too
            np.testing.assert_array_equal(step.global_index[step.own_rows], step.index)
        union = np.concatenate([per_rank[r][number].index for r in range(world)])
        assert sorted(union.tolist()) == sorted(expected.index.tolist())


def test_every_sample_once_per_epoch_and_a_new_order_each_epoch() -> None:
    epoch1 = all_rank_steps(40, 8, 2, seed=0, epoch=1)
    epoch2 = all_rank_steps(40, 8, 2, seed=0, epoch=2)
    flat1 = np.concatenate([s.index for steps in epoch1 for s in steps])
    assert sorted(flat1.tolist()) == list(range(40))
    first = np.concatenate([s.index for s in epoch1[0]])
    assert not np.array_equal(first, np.concatenate([s.index for s in epoch2[0]]))
    assert np.array_equal(first, np.concatenate([s.index for s in all_rank_steps(40, 8, 2, 0, 1)[0]]))


def test_uneven_sample_count_pads_so_ranks_stay_in_step() -> None:
    per_rank = all_rank_steps(7, 4, 2, seed=1, epoch=1)
    assert [[len(s.index) for s in steps] for steps in per_rank] == [[2, 2], [2, 2]]
    flat = np.concatenate([s.index for steps in per_rank for s in steps])
    assert set(flat.tolist()) == set(range(7)) and len(flat) == 8  # one sample repeated


def test_single_process_never_yields_a_batch_of_one() -> None:
    loader = ShardedBatches(9, 4, 1, 0, seed=0)
    loader.set_epoch(1)
    assert [len(s.index) for s in loader.steps()] == [4, 5] and len(loader) == 2


def test_global_batch_not_divisible_by_world_rounds_up_per_process() -> None:
    loader = ShardedBatches(64, 10, 4, 0, seed=0)
    assert loader.local_batch == 3 and loader.global_batch == 12


def inputs_of(n: int) -> dict:
    generator = torch.Generator().manual_seed(0)
    return {
        "imu": torch.randn(n, 120, 6, generator=generator),
        "skeleton": torch.randn(n, 40, 20, 3, generator=generator),
    }


def identity_forward(batch: dict) -> torch.Tensor:
    """Stands in for the model: (B, 2, d) 'projections' that are the augmented inputs themselves."""
    return torch.stack(
        [
            batch["imu"].reshape(len(batch["imu"]), -1)[:, :60],
            batch["skeleton"].reshape(len(batch["skeleton"]), -1)[:, :60],
        ],
        dim=1,
    )


@pytest.mark.parametrize("draws", ["global", "sample"])
def test_a_rank_draws_exactly_its_rows_of_the_single_process_views(draws: str) -> None:
    inputs = inputs_of(12)
    config = Stage1Config(num_views=3)
    single = all_rank_steps(12, 8, 1, seed=2, epoch=1)[0][0]
    expected_proj, expected_alpha = draw_step(identity_forward, inputs, single, config, 5, 1, draws)
    rows_of = {int(i): k for k, i in enumerate(single.global_index)}
    for rank_steps in all_rank_steps(12, 8, 2, seed=2, epoch=1):
        step = rank_steps[0]
        proj, alpha = draw_step(identity_forward, inputs, step, config, 5, 1, draws)
        rows = [rows_of[int(i)] for i in step.index]
        torch.testing.assert_close(proj, expected_proj[rows], rtol=0, atol=0)
        torch.testing.assert_close(alpha, expected_alpha[rows], rtol=0, atol=0)
    raw = identity_forward({m: x[single.global_index] for m, x in inputs.items()})
    assert not torch.allclose(expected_proj, raw)  # the inputs were augmented
    torch.testing.assert_close(expected_alpha.sum(-1), torch.ones(8, 3))


def test_batch_scope_weights_are_shared_across_ranks() -> None:
    config = Stage1Config(num_views=3, dirichlet_scope="batch")
    inputs = inputs_of(8)
    alphas = []
    for rank_steps in all_rank_steps(8, 8, 2, seed=0, epoch=1):
        alphas.append(draw_step(identity_forward, inputs, rank_steps[0], config, 0, 1, "sample")[1])
    torch.testing.assert_close(alphas[0], alphas[1])
    assert torch.equal(alphas[0][0], alphas[0][1])


def test_unknown_draws_mode_is_rejected() -> None:
    step = all_rank_steps(4, 4, 1, 0, 1)[0][0]
    with pytest.raises(ValueError, match="draws"):
        draw_step(identity_forward, inputs_of(4), step, Stage1Config(), 0, 1, "rank")


def test_keyed_seed_separates_keys() -> None:
    seeds = {keyed_seed(0, s, e, i) for s in range(3) for e in range(3) for i in range(20)}
    assert len(seeds) == 180
    assert isinstance(keyed_seed(-1, 0, 0, 0), int)  # negative run seeds are accepted

"""Autograd collectives and synchronised BatchNorm on 2 gloo processes vs one process (float64).

One spawn of two workers (``distributed_support.collectives_body``) computes everything; the tests
compare it with the single-process computation here, to 1e-10 relative (float64).
"""

import pytest
import torch
import torch.nn.functional as F
from distributed_support import (
    BN_ROWS,
    GATHER_ROWS,
    TEMPERATURE,
    bn_inputs,
    bn_weights,
    collectives_body,
    gather_inputs,
    gather_objective,
    model_views,
    spawn_gloo,
    view_model,
)
from torch import nn

from cosmo_edge.training.contrastive import contrastive_fusion_loss

WORLD = 2
RTOL, ATOL = 1e-10, 1e-12


@pytest.fixture(scope="module")
def ranks(tmp_path_factory):
    return spawn_gloo(collectives_body, WORLD, tmp_path_factory.mktemp("collectives"))


@pytest.mark.parametrize("mode", ["all_reduce", "reduce_scatter"])
def test_all_gather_gradient_equals_single_process_gradient(ranks, mode: str) -> None:
    full = gather_inputs(WORLD).requires_grad_(True)
    total = sum(gather_objective(full, r) for r in range(WORLD))  # what all ranks' losses add up to
    total.backward()
    for r in range(WORLD):
        got = ranks[r][f"gather-{mode}"]
        torch.testing.assert_close(got["gathered"], full.detach(), rtol=0, atol=0)
        expected = full.grad[r * GATHER_ROWS : (r + 1) * GATHER_ROWS]
        torch.testing.assert_close(got["grad"], expected, rtol=RTOL, atol=ATOL)


def test_all_reduce_gradient_equals_single_process_gradient(ranks) -> None:
    full = gather_inputs(WORLD).requires_grad_(True)
    parts = full.split(GATHER_ROWS)
    total = sum(parts)
    sum((total.sin() * (r + 1)).sum() for r in range(WORLD)).backward()
    for r in range(WORLD):
        torch.testing.assert_close(ranks[r]["all_reduce"]["sum"], total.detach(), rtol=RTOL, atol=ATOL)
        expected = full.grad[r * GATHER_ROWS : (r + 1) * GATHER_ROWS]
        torch.testing.assert_close(ranks[r]["all_reduce"]["grad"], expected, rtol=RTOL, atol=ATOL)


def test_ddp_with_gathered_loss_gives_the_single_process_gradient(ranks) -> None:
    model = view_model()
    full = gather_inputs(WORLD)
    loss = contrastive_fusion_loss(model_views(model, full), TEMPERATURE)
    loss.backward()
    mean_rank_loss = sum(float(ranks[r]["ddp"]["loss"]) for r in range(WORLD)) / WORLD
    assert mean_rank_loss == pytest.approx(float(loss.detach()), rel=1e-12)
    for r in range(WORLD):
        for got, param in zip(ranks[r]["ddp"]["grads"], model.parameters()):
            torch.testing.assert_close(got, param.grad, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("dims,momentum", [(3, 0.1), (4, None)])
def test_global_batchnorm_matches_batchnorm_on_the_whole_batch(ranks, dims: int, momentum) -> None:
    x = bn_inputs(WORLD, dims).requires_grad_(True)
    bn = (nn.BatchNorm1d if dims == 3 else nn.BatchNorm2d)(4, momentum=momentum).double()
    with torch.no_grad():
        bn.weight.copy_(torch.linspace(0.5, 2.0, 4))
        bn.bias.copy_(torch.linspace(-1.0, 1.0, 4))
    out = bn(x)
    (out * bn_weights(x)).sum().backward()
    parts = [ranks[r][f"bn{dims}"] for r in range(WORLD)]
    assert [len(p["out"]) for p in parts] == list(BN_ROWS[:WORLD])
    torch.testing.assert_close(torch.cat([p["out"] for p in parts]), out.detach(), rtol=RTOL, atol=ATOL)
    torch.testing.assert_close(torch.cat([p["grad"] for p in parts]), x.grad, rtol=RTOL, atol=ATOL)
    # Affine gradients are per-rank partial sums; DDP would add (average) them across ranks.
    torch.testing.assert_close(sum(p["weight_grad"] for p in parts), bn.weight.grad, rtol=RTOL, atol=ATOL)
    torch.testing.assert_close(sum(p["bias_grad"] for p in parts), bn.bias.grad, rtol=RTOL, atol=ATOL)
    for p in parts:
        torch.testing.assert_close(p["running_mean"], bn.running_mean, rtol=RTOL, atol=ATOL)
        torch.testing.assert_close(p["running_var"], bn.running_var, rtol=RTOL, atol=ATOL)


def test_plain_batchnorm_per_rank_would_differ(ranks) -> None:
    """The check above can fail: each rank's own-shard BatchNorm gives other outputs."""
    x = bn_inputs(WORLD, 3)
    shard_out = F.batch_norm(x[: BN_ROWS[0]], None, None, training=True)
    synced = ranks[0]["bn3"]["out"]
    plain_out = (
        shard_out * torch.linspace(0.5, 2.0, 4)[None, :, None] + torch.linspace(-1, 1, 4)[None, :, None]
    )
    assert not torch.allclose(plain_out.double(), synced, atol=1e-3)

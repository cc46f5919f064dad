"""In-process checks of the distributed pieces: the anchor-split loss, BatchNorm conversion, the env."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from cosmo_edge.training.contrastive import contrastive_fusion_loss
from cosmo_edge.training.distributed import (
    DistContext,
    DistributedSetupError,
    all_gather_with_grad,
    choose_backend,
    env_world_size,
    init_from_env,
    is_enabled,
)
from cosmo_edge.training.global_contrastive import anchor_losses, global_contrastive_loss
from cosmo_edge.training.pretrain_distributed import shard_bounds
from cosmo_edge.training.sync_batchnorm import (
    GlobalBatchNorm,
    convert_sync_batchnorm,
    revert_sync_batchnorm,
    synchronised_batchnorms,
)


def unit_views(n: int, p: int, d: int, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return F.normalize(torch.randn(n, p, d, generator=generator, dtype=torch.float64), dim=-1)


def test_single_process_global_loss_is_the_stage1_loss() -> None:
    views = unit_views(6, 4, 8, 0)
    expected = contrastive_fusion_loss(views, 0.1)
    torch.testing.assert_close(global_contrastive_loss(views, 0.1), expected, rtol=1e-12, atol=0)


@pytest.mark.parametrize("world", [2, 3])
def test_rank_shares_average_to_the_global_loss(world: int) -> None:
    """L_r = N / (total anchors) * sum of own anchor losses; the mean over ranks is the full loss."""
    views = unit_views(6, 3, 8, 1)
    b = 6 // world
    total = views.shape[0] * views.shape[1]
    shares = [
        anchor_losses(views[r * b : (r + 1) * b], views, r * b, 0.2).sum() * world / total
        for r in range(world)
    ]
    torch.testing.assert_close(sum(shares) / world, contrastive_fusion_loss(views, 0.2), rtol=1e-12, atol=0)


def test_anchor_rows_must_lie_inside_the_views() -> None:
    views = unit_views(4, 2, 8, 2)
    with pytest.raises(ValueError, match="do not lie inside"):
        anchor_losses(views[:2], views, 3, 0.1)


def test_gather_is_identity_without_a_process_group() -> None:
    x = torch.randn(3, 2)
    assert all_gather_with_grad(x) is x


def small_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv1d(3, 4, 3), nn.BatchNorm1d(4), nn.ReLU(), nn.Flatten(), nn.BatchNorm1d(24))


def test_convert_and_revert_keep_state_and_classes() -> None:
    net = small_net().double()
    net(torch.randn(5, 3, 8, dtype=torch.float64))  # give the running statistics values
    before = {k: v.clone() for k, v in net.state_dict().items()}
    convert_sync_batchnorm(net, torch.device("cpu"))
    assert synchronised_batchnorms(net) == ["1", "4"]
    assert all(isinstance(net[i], GlobalBatchNorm) for i in (1, 4))
    assert net[1].weight.dtype == torch.float64
    assert set(net.state_dict()) == set(before)
    revert_sync_batchnorm(net)
    assert type(net[1]) is nn.BatchNorm1d and type(net[4]) is nn.BatchNorm1d
    for key, value in net.state_dict().items():
        assert torch.equal(value, before[key]), key


def test_convert_for_cuda_uses_torch_syncbatchnorm() -> None:
    net = convert_sync_batchnorm(small_net(), torch.device("cuda", 0))
    assert isinstance(net[1], nn.SyncBatchNorm) and not isinstance(net[1], GlobalBatchNorm)
    assert type(revert_sync_batchnorm(net)[1]) is nn.BatchNorm1d


def test_global_batchnorm_without_group_is_plain_batchnorm() -> None:
    x = torch.randn(6, 4, 5)
    plain, synced = nn.BatchNorm1d(4), GlobalBatchNorm(4)
    torch.testing.assert_close(synced(x), plain(x))
    torch.testing.assert_close(synced.running_var, plain.running_var)


def test_enabled_only_with_several_processes() -> None:
    assert not is_enabled({})
    assert not is_enabled({"WORLD_SIZE": "1"})
    assert is_enabled({"WORLD_SIZE": "2"})
    assert env_world_size({"WORLD_SIZE": "8"}) == 8
    with pytest.raises(DistributedSetupError, match="WORLD_SIZE"):
        is_enabled({"WORLD_SIZE": "two"})


def test_backend_choice() -> None:
    expected = "nccl" if torch.cuda.is_available() and torch.distributed.is_nccl_available() else "gloo"
    assert choose_backend({}) == expected
    assert choose_backend({"COSMO_DIST_BACKEND": "gloo"}) == "gloo"
    with pytest.raises(DistributedSetupError, match="COSMO_DIST_BACKEND"):
        choose_backend({"COSMO_DIST_BACKEND": "mpi"})


def test_init_names_the_missing_variable(monkeypatch) -> None:
    for name in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(DistributedSetupError, match="RANK is not set"):
        init_from_env()


def test_single_context() -> None:
    ctx = DistContext.single()
    assert ctx.is_main and not ctx.active and ctx.world_size == 1


@pytest.mark.parametrize("n,world", [(10, 3), (2, 4), (8, 2)])
def test_shards_are_contiguous_and_cover_everything(n: int, world: int) -> None:
    bounds = [shard_bounds(n, world, r) for r in range(world)]
    assert bounds[0][0] == 0 and bounds[-1][1] == n
    assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))
    sizes = [stop - start for start, stop in bounds]
    assert max(sizes) - min(sizes) <= 1


def test_baseline_methods_are_refused_under_torchrun(monkeypatch, capsys) -> None:
    import argparse

    from cosmo_edge.training.config import RunConfig
    from cosmo_edge.training.pretrain_distributed import run_distributed

    monkeypatch.setenv("RANK", "0")
    assert run_distributed(argparse.Namespace(method="cmc"), RunConfig()) == 2
    assert "--method cmc runs in one process" in capsys.readouterr().out

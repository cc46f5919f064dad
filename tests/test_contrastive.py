"""Contrastive fusion loss and fused positives (cosmo-method.md section 2.4 required tests)."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from cosmo_edge.training.contrastive import (
    contrastive_fusion_loss,
    fuse_views,
    loss_floor,
    sample_fusion_weights,
)


def random_projections(n: int, m: int, d: int, seed: int, dtype=torch.float64) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return F.normalize(torch.randn(n, m, d, generator=generator, dtype=dtype), dim=-1)


def naive_loss(views: torch.Tensor, temperature: float) -> float:
    """Direct transcription of the section 2.3 formula with Python loops."""
    n, p, d = views.shape
    flat = views.reshape(n * p, d)
    total = 0.0
    for s in range(n * p):
        denominator = sum(math.exp(float(flat[s] @ flat[a]) / temperature) for a in range(n * p) if a != s)
        positives = [q for q in range(n * p) if q != s and q // p == s // p]
        terms = [-math.log(math.exp(float(flat[s] @ flat[q]) / temperature) / denominator) for q in positives]
        total += sum(terms) / len(terms)
    return total / (n * p)


@pytest.mark.parametrize("n,p,m", [(2, 2, 2), (5, 3, 2), (8, 9, 2), (6, 4, 3), (16, 9, 3)])
def test_loss_is_at_least_log_p_minus_1_on_random_inputs(n: int, p: int, m: int) -> None:
    rng = np.random.default_rng(n * 100 + p)
    for seed in range(3):
        projections = random_projections(n, m, 32, seed)
        views = fuse_views(projections, sample_fusion_weights(n, p, m, "dirichlet", rng))
        for temperature in (0.07, 0.5):
            loss = float(contrastive_fusion_loss(views, temperature))
            assert loss >= loss_floor(p) - 1e-6


@pytest.mark.parametrize("n,p", [(4, 9), (8, 9), (10, 3)])
def test_one_hot_case_reaches_the_floor(n: int, p: int) -> None:
    temperature = 0.07
    one_hot = torch.eye(n, 128, dtype=torch.float64)
    projections = one_hot.unsqueeze(1).expand(n, 2, 128)
    views = fuse_views(projections, sample_fusion_weights(n, p, 2, "dirichlet", np.random.default_rng(0)))
    loss = float(contrastive_fusion_loss(views, temperature))
    excess = p * (n - 1) / ((p - 1) * math.exp(1 / temperature))
    assert abs(loss - math.log(p - 1)) < 1e-4
    assert loss - math.log(p - 1) == pytest.approx(excess, rel=1e-3)


@pytest.mark.parametrize("n,p,m", [(3, 2, 2), (4, 3, 3), (5, 5, 2)])
def test_matches_naive_loop(n: int, p: int, m: int) -> None:
    projections = random_projections(n, m, 16, seed=n + p)
    views = fuse_views(projections, sample_fusion_weights(n, p, m, "dirichlet", np.random.default_rng(1)))
    for temperature in (0.07, 0.3):
        assert float(contrastive_fusion_loss(views, temperature)) == pytest.approx(
            naive_loss(views, temperature), rel=1e-9, abs=1e-9
        )


def test_two_views_equal_cmc_infonce() -> None:
    n, temperature = 7, 0.1
    projections = random_projections(n, 2, 24, seed=3)
    alphas = torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=torch.float64).expand(n, 2, 2)
    ours = contrastive_fusion_loss(fuse_views(projections, alphas), temperature)
    # Two-view CMC / NT-Xent: anchor r1_i has positive r2_i and the 2N - 2 other views as negatives.
    stacked = torch.cat([projections[:, 0], projections[:, 1]])
    logits = stacked @ stacked.t() / temperature
    logits.fill_diagonal_(float("-inf"))
    targets = torch.cat([torch.arange(n, 2 * n), torch.arange(n)])
    cmc = F.cross_entropy(logits, targets)
    assert float(ours) == pytest.approx(float(cmc), rel=1e-10)


def test_permutation_invariance_and_finite_gradients() -> None:
    n, p = 10, 9
    projections = random_projections(n, 3, 32, seed=5).requires_grad_(True)
    alphas = sample_fusion_weights(n, p, 3, "dirichlet", np.random.default_rng(2))
    loss = contrastive_fusion_loss(fuse_views(projections, alphas), 0.07)
    permutation = torch.randperm(n, generator=torch.Generator().manual_seed(0))
    permuted = contrastive_fusion_loss(fuse_views(projections[permutation], alphas[permutation]), 0.07)
    assert float(loss.detach()) == pytest.approx(float(permuted.detach()), rel=1e-12)
    loss.backward()
    assert projections.grad is not None and torch.isfinite(projections.grad).all()
    assert projections.grad.abs().sum() > 0


def test_float32_large_logits_stay_finite() -> None:
    views = F.normalize(torch.ones(4, 3, 8) + 1e-3 * torch.randn(4, 3, 8), dim=-1)
    loss = contrastive_fusion_loss(views, temperature=0.01)
    assert torch.isfinite(loss)


@pytest.mark.parametrize("p", [2, 9, 10, 20])
@pytest.mark.parametrize("m", [2, 3, 4])
def test_dirichlet_weights_lie_on_the_simplex(p: int, m: int) -> None:
    alphas = sample_fusion_weights(64, p, m, "dirichlet", np.random.default_rng(p * m))
    assert alphas.shape == (64, p, m)
    assert (alphas >= 0).all()
    assert torch.allclose(alphas.sum(-1), torch.ones(64, p), atol=1e-6)
    assert alphas.std() > 0.05  # fresh draws, not a constant


@pytest.mark.parametrize("p", [2, 9, 10, 20])
def test_fixed_weights_stay_convex_for_any_p(p: int) -> None:
    alphas = sample_fusion_weights(3, p, 2, "fixed")
    assert (alphas >= 0).all() and (alphas <= 1).all()
    assert torch.allclose(alphas.sum(-1), torch.ones(3, p))
    if p == 9:  # the reference's w_p = p / 10
        assert torch.allclose(alphas[0, :, 0], torch.arange(1, 10) / 10.0)


def test_batch_scope_shares_weights_across_samples() -> None:
    alphas = sample_fusion_weights(5, 4, 3, "dirichlet", np.random.default_rng(0), scope="batch")
    assert torch.equal(alphas[0], alphas[4])
    per_sample = sample_fusion_weights(5, 4, 3, "dirichlet", np.random.default_rng(0), scope="sample")
    assert not torch.equal(per_sample[0], per_sample[4])


def test_fused_views_are_unit_length() -> None:
    projections = random_projections(6, 3, 16, seed=9)
    views = fuse_views(projections, sample_fusion_weights(6, 5, 3, "dirichlet", np.random.default_rng(0)))
    assert torch.allclose(views.norm(dim=-1), torch.ones(6, 5, dtype=views.dtype))


def test_invalid_arguments_raise() -> None:
    with pytest.raises(ValueError):
        sample_fusion_weights(4, 1, 2)
    with pytest.raises(ValueError):
        sample_fusion_weights(4, 3, 3, "fixed")
    with pytest.raises(ValueError):
        contrastive_fusion_loss(torch.zeros(4, 1, 8))

"""Quality of modality: Hopkins statistic, silhouette-selected cluster count, q = H / (c + 1)."""

import numpy as np
import pytest

from cosmo_edge.training.config import QoMConfig
from cosmo_edge.training.qom import (
    best_cluster_count,
    compute_qom,
    group_halves,
    hopkins_statistic,
    normalise_weights,
    qom_scores,
    qom_weights_or_uniform,
    reduce_features,
    silhouette_curve,
    smooth_curve,
)


def blobs(k: int, per_cluster: int, dims: int, spread: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.uniform(-10, 10, size=(k, dims))
    return np.concatenate([c + spread * rng.standard_normal((per_cluster, dims)) for c in centres])


def test_hopkins_orders_regular_uniform_and_clustered_data() -> None:
    uniform = np.random.default_rng(100).uniform(size=(400, 3))  # not the seed Hopkins uses
    grid = np.stack(np.meshgrid(*[np.linspace(0, 1, 8)] * 3), -1).reshape(-1, 3)
    clustered = blobs(5, 80, 3, 0.05, seed=1)
    h_uniform = hopkins_statistic(uniform, seed=0)
    assert 0.4 < h_uniform < 0.6
    assert hopkins_statistic(grid, seed=0) < h_uniform
    assert hopkins_statistic(clustered, seed=0) > 0.9


def test_hopkins_is_seeded() -> None:
    x = blobs(3, 30, 4, 1.0, seed=2)
    assert hopkins_statistic(x, seed=7) == hopkins_statistic(x, seed=7)


def test_best_cluster_count_finds_the_blobs() -> None:
    x = blobs(4, 40, 5, 0.3, seed=3)
    k_star, scores = best_cluster_count(x, k_max=10, seed=0, n_init=3)
    assert k_star == 4
    assert sorted(scores) == list(range(2, 11))


def test_q_guard_and_normalisation() -> None:
    q = qom_scores([0.8, 0.6], [0, 3])
    assert q == pytest.approx([0.8, 0.15])  # H / (c + 1): no division by zero at k* = K
    assert sum(normalise_weights(q)) == pytest.approx(1.0)
    assert normalise_weights([0.0, 0.0, 0.0]) == pytest.approx([1 / 3] * 3)
    assert qom_scores([0.8513], [3]) == pytest.approx([0.8513 / 4])  # the deck's depth example


def test_compute_qom_prefers_the_modality_with_the_right_cluster_count() -> None:
    good = blobs(4, 40, 8, 0.3, seed=4)  # 4 clusters, K = 4
    poor = np.random.default_rng(5).standard_normal((160, 8))  # no structure
    config = QoMConfig(pca_dims=5, hopkins_repeats=3, kmeans_n_init=2, silhouette="plain", smooth_window=1)
    record = compute_qom({"imu": poor, "skeleton": good}, num_classes=4, config=config, seed=0)
    assert record["recipe"]["silhouette"] == "plain"
    assert record["modalities"] == ["imu", "skeleton"]
    assert record["k_star"][1] == 4 and record["cluster_error"][1] == 0
    assert record["weights"][1] > record["weights"][0]
    assert sum(record["weights"]) == pytest.approx(1.0)
    for j in range(2):
        expected_q = record["hopkins"][j] / (record["cluster_error"][j] + 1)
        assert record["q"][j] == pytest.approx(expected_q)


def test_fixed_and_uniform_modes() -> None:
    features = {"imu": np.zeros((5, 2)), "skeleton": np.zeros((5, 2))}
    fixed = compute_qom(features, 3, QoMConfig(mode="fixed"))
    assert fixed["weights"] == pytest.approx([0.3, 0.7])
    uniform = compute_qom(features, 3, QoMConfig(mode="uniform"))
    assert uniform["weights"] == pytest.approx([0.5, 0.5])
    with pytest.raises(ValueError):
        compute_qom(features, 3, QoMConfig(mode="nonsense"))


def test_reduce_features_standardises_and_projects() -> None:
    x = np.random.default_rng(0).standard_normal((50, 20)) * np.arange(1, 21)
    x[:, 3] = 7.0  # a constant column must not produce NaN
    reduced = reduce_features(x, pca_dims=10, seed=0)
    assert reduced.shape == (50, 10) and np.isfinite(reduced).all()


def test_weights_checked_against_modality_order() -> None:
    record = {"modalities": ["imu", "skeleton"], "weights": [0.4, 0.6]}
    assert qom_weights_or_uniform(record, ["imu", "skeleton"]) == [0.4, 0.6]
    assert qom_weights_or_uniform(None, ["imu", "depth"]) == [0.5, 0.5]
    with pytest.raises(ValueError):
        qom_weights_or_uniform(record, ["skeleton", "imu"])


def test_cross_subject_silhouette_finds_clusters_shared_by_all_subjects() -> None:
    """Three movements performed by six subjects: fitted on odd subjects, scored on even ones."""
    rng = np.random.default_rng(0)
    movements = rng.uniform(-6, 6, size=(3, 4))
    x = np.concatenate([centre + rng.standard_normal((4, 4)) for _ in range(6) for centre in movements])
    groups = np.repeat(np.arange(1, 7), 12)
    k_star, curve = best_cluster_count(x, k_max=12, seed=0, n_init=3, groups=groups)
    plain = silhouette_curve(x, range(2, 13), seed=0, n_init=3)
    assert k_star == 3
    assert sorted(curve) == list(range(2, 13))
    assert curve != plain  # the held-out halves, not all points, were scored


def test_smoothing_and_group_halves() -> None:
    assert smooth_curve({2: 0.0, 3: 1.0, 4: 0.0}, 3) == pytest.approx({2: 0.5, 3: 1 / 3, 4: 0.5})
    assert smooth_curve({2: 0.1, 3: 0.2}, 1) == {2: 0.1, 3: 0.2}
    halves = group_halves(np.array([1, 2, 3, 4, 1]))
    assert halves[0].tolist() == [True, False, True, False, True]
    assert group_halves(np.array([5, 5])) is None and group_halves(None) is None

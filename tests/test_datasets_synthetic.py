"""Synthetic data: real shapes, determinism, subsets, and modalities that need each other."""

from typing import List

import numpy as np
import pytest

from cosmo_edge.datasets import DatasetFormatError, MultimodalDataset, make_synthetic_dataset
from cosmo_edge.preprocess import INPUT_SHAPES, Normalization


def nearest_centroid_accuracy(ds: MultimodalDataset, modalities: List[str]) -> float:
    """Train on all but the last two subjects, test on those; features are normalised and flattened."""
    train = ds.subjects <= ds.subjects.max() - 2
    norm = Normalization().fit({m: ds.inputs[m][train] for m in modalities})
    x = norm.apply({m: ds.inputs[m] for m in modalities})
    feats = np.concatenate([x[m].reshape(len(ds), -1) / np.sqrt(x[m][0].size) for m in modalities], axis=1)
    centroids = np.stack([feats[train & (ds.labels == c)].mean(axis=0) for c in range(ds.num_classes)])
    dist = ((feats[~train][:, None] - centroids[None]) ** 2).sum(axis=-1)
    return float((dist.argmin(axis=1) == ds.labels[~train]).mean())


def test_shapes_dtypes_and_bookkeeping() -> None:
    ds = make_synthetic_dataset(modalities=("imu", "skeleton", "depth"))
    assert len(ds) == 6 * 4 * 3
    for name in ("imu", "skeleton", "depth"):
        assert ds.inputs[name].shape == (len(ds),) + INPUT_SHAPES[name]
        assert ds.inputs[name].dtype == np.float32
    assert ds.labels.dtype == np.int64 and set(ds.labels) == set(range(6))
    assert set(ds.subjects) == {1, 2, 3, 4} and len(set(ds.trial_ids)) == len(ds)
    depth = ds.inputs["depth"]
    assert depth.min() == 0.0 and 0.01 < (depth > 0).mean() < 0.5  # silhouette on zero background
    assert 2.0 < depth[depth > 0].mean() < 4.0  # metres, as the depth camera would give
    assert ds.modalities == ["imu", "skeleton", "depth"]


def test_same_seed_same_data_other_seed_other_data() -> None:
    a = make_synthetic_dataset(seed=5)
    b = make_synthetic_dataset(seed=5)
    c = make_synthetic_dataset(seed=6)
    assert np.array_equal(a.inputs["imu"], b.inputs["imu"])
    assert not np.allclose(a.inputs["imu"], c.inputs["imu"])


def test_subset_and_select_modalities() -> None:
    ds = make_synthetic_dataset(num_classes=3, num_subjects=2, trials_per_subject_class=2)
    sub = ds.subset(ds.labels == 1)
    assert len(sub) == 4 and set(sub.labels) == {1}
    assert sub.trial_ids == [t for t, y in zip(ds.trial_ids, ds.labels) if y == 1]
    sub.inputs["imu"][:] = 0.0  # a copy: the parent is unchanged
    assert np.abs(ds.inputs["imu"]).sum() > 0
    only = ds.select_modalities(["skeleton"])
    assert only.modalities == ["skeleton"] and len(only) == len(ds)
    with pytest.raises(DatasetFormatError):
        MultimodalDataset({"imu": np.zeros((3, 2))}, np.zeros(2), np.zeros(2), ["a", "b"], ["x"])


def test_every_modality_separates_classes_at_low_noise() -> None:
    ds = make_synthetic_dataset(num_subjects=6, trials_per_subject_class=4, seed=1, noise_std=0.1)
    assert nearest_centroid_accuracy(ds, ["imu"]) > 0.75
    assert nearest_centroid_accuracy(ds, ["skeleton"]) > 0.75


@pytest.mark.slow
def test_at_high_noise_fusion_beats_each_single_modality() -> None:
    ds = make_synthetic_dataset(num_subjects=8, trials_per_subject_class=5, seed=1, noise_std=1.5)
    imu = nearest_centroid_accuracy(ds, ["imu"])
    skel = nearest_centroid_accuracy(ds, ["skeleton"])
    both = nearest_centroid_accuracy(ds, ["imu", "skeleton"])
    assert both > max(imu, skel) + 0.1, (imu, skel, both)
    assert both > 0.75


def test_single_modalities_confuse_the_designed_pairs() -> None:
    """Classes 0/1 share their IMU pattern, 1/2 their skeleton pattern: without details they collide."""
    ds = make_synthetic_dataset(num_classes=4, num_subjects=3, trials_per_subject_class=2, noise_std=0.0)
    mean_imu = [ds.inputs["imu"][ds.labels == c].mean(axis=0) for c in range(4)]
    mean_skel = [ds.inputs["skeleton"][ds.labels == c].mean(axis=0) for c in range(4)]

    def gap(means: List[np.ndarray], a: int, b: int) -> float:
        return float(np.abs(means[a] - means[b]).mean())

    assert gap(mean_imu, 0, 1) < 0.5 * gap(mean_imu, 0, 2)
    assert gap(mean_skel, 1, 2) < 0.5 * gap(mean_skel, 0, 1)

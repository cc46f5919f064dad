"""Cross-subject and label-rate splits: the section-7 counts, disjointness, stratification, seeds."""

import numpy as np
import pytest

from cosmo_edge.datasets import (
    LABEL_RATES_PERCENT,
    MultimodalDataset,
    cross_subject_split,
    label_rate_split,
    labeled_per_class,
    make_synthetic_dataset,
)

# cosmo-method.md section 7: rate -> (labeled total, unlabeled total)
SPEC_TABLE = {5: (27, 513), 10: (54, 486), 15: (81, 459), 20: (108, 432), 30: (162, 378), 40: (216, 324)}


def utd_shaped_dataset() -> MultimodalDataset:
    """UTD-MHAD's trial grid (27 actions x 8 subjects x 4 trials, minus the three absent) with dummy data."""
    absent = {(8, 1, 4), (23, 6, 4), (27, 8, 4)}
    keys = [
        (a, s, t) for a in range(1, 28) for s in range(1, 9) for t in range(1, 5) if (a, s, t) not in absent
    ]
    return MultimodalDataset(
        inputs={"imu": np.zeros((len(keys), 1), np.float32)},
        labels=np.array([a - 1 for a, _, _ in keys]),
        subjects=np.array([s for _, s, _ in keys]),
        trial_ids=[f"a{a}_s{s}_t{t}" for a, s, t in keys],
        label_names=[f"action {a}" for a in range(1, 28)],
    )


def check_split_counts(ds: MultimodalDataset) -> None:
    """The spec's table on a dataset with UTD-MHAD's trial grid (shared with the real-data test)."""
    pool, test = cross_subject_split(ds, range(1, 7), (7, 8))
    assert len(pool) == 646 and len(test) == 215
    validations = []
    for rate, (n_lab, n_unl) in SPEC_TABLE.items():
        split = label_rate_split(ds, pool, rate, seed=0)
        assert (len(split.labeled), len(split.unlabeled), len(split.validation)) == (n_lab, n_unl, 106)
        assert np.all(np.bincount(ds.labels[split.labeled], minlength=27) == rate // 5)
        val_counts = np.bincount(ds.labels[split.validation], minlength=27)
        assert val_counts[7] == 3 and val_counts[22] == 3  # actions 8 and 23 lack one training trial
        assert (np.delete(val_counts, [7, 22]) == 4).all()
        validations.append(split.validation)
    assert all(np.array_equal(v, validations[0]) for v in validations)


def test_spec_table_counts_on_the_utd_grid() -> None:
    check_split_counts(utd_shaped_dataset())


def test_parts_are_disjoint_cover_the_pool_and_stay_in_it() -> None:
    ds = make_synthetic_dataset(num_classes=5, num_subjects=6, trials_per_subject_class=6, seed=1)
    pool, test = cross_subject_split(ds, (1, 2, 3, 4), (5, 6))
    assert not set(pool) & set(test) and len(pool) + len(test) == len(ds)
    assert set(ds.subjects[test]) == {5, 6}
    split = label_rate_split(ds, pool, 10, seed=3)  # 2 labeled and 18 unlabeled per class, 4 validation
    parts = [set(split.labeled), set(split.unlabeled), set(split.validation)]
    assert sum(len(p) for p in parts) == len(pool) == len(set().union(*parts))
    assert set().union(*parts) == set(pool)
    for part, per_class in ((split.labeled, 2), (split.unlabeled, 18), (split.validation, 4)):
        assert np.all(np.bincount(ds.labels[part], minlength=5) == per_class)
    ids = split.trial_ids(ds)
    assert len(ids["labeled"]) == 10 and ids["labeled"][0] == ds.trial_ids[split.labeled[0]]


def test_seeds_change_the_labeled_draw_but_not_validation_and_rates_nest() -> None:
    ds = utd_shaped_dataset()
    pool, _ = cross_subject_split(ds, range(1, 7), (7, 8))
    a = label_rate_split(ds, pool, 10, seed=0)
    b = label_rate_split(ds, pool, 10, seed=1)
    again = label_rate_split(ds, pool, 10, seed=0)
    assert np.array_equal(a.labeled, again.labeled) and np.array_equal(a.unlabeled, again.unlabeled)
    assert not np.array_equal(a.labeled, b.labeled)
    assert np.array_equal(a.validation, b.validation)
    wider = label_rate_split(ds, pool, 40, seed=0)
    assert set(a.labeled) <= set(wider.labeled)


def test_bad_rates_and_subjects_are_rejected() -> None:
    ds = utd_shaped_dataset()
    assert [labeled_per_class(r) for r in LABEL_RATES_PERCENT] == [1, 2, 3, 4, 6, 8]
    with pytest.raises(ValueError, match="whole count"):
        labeled_per_class(7)
    with pytest.raises(ValueError, match="both"):
        cross_subject_split(ds, (1, 2), (2, 3))
    with pytest.raises(ValueError, match="not in the dataset"):
        cross_subject_split(ds, (1, 2), (9,))
    pool, _ = cross_subject_split(ds, (1,), (7,))  # 4 trials per class: too few for 8 labeled
    with pytest.raises(ValueError, match="fewer than"):
        label_rate_split(ds, pool, 40, seed=0)

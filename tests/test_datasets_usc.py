"""USC-HAD loader on small fake ``Subject{s}/a{a}t{t}.mat`` files written in the release's layout."""

import pathlib
from typing import Dict

import numpy as np
import pytest
from scipy.io import savemat

from cosmo_edge.datasets import DataRootError, load_dataset, load_usc_had, usc_split
from cosmo_edge.datasets import usc_had as usc

# (subject, activity, trial) -> samples; 100 Hz, so 200 samples is one 2 s window.
LENGTHS: Dict[tuple, int] = {
    (s, a, t): 450 + 37 * a + 11 * t for s in (1, 2, 11, 13) for a in (1, 2, 8) for t in (1, 2)
}
LENGTHS[(2, 8, 2)] = 150  # shorter than one window: dropped


def readings_for(key: tuple) -> np.ndarray:
    """Deterministic (n, 6) readings whose acc x encodes the subject and gyro z the sample index."""
    s, a, t = key
    n = LENGTHS[key]
    out = np.zeros((n, 6))
    out[:, 0] = s
    out[:, 1] = a
    out[:, 2] = t
    out[:, 3:5] = np.random.default_rng(s * 100 + a * 10 + t).normal(size=(n, 2)) * 50
    out[:, 5] = np.arange(n)
    return out


@pytest.fixture
def usc_root(tmp_path: pathlib.Path) -> pathlib.Path:
    """Fake release: metadata strings as in the real files; one file misspells and misstates activity."""
    root = tmp_path / "USC-HAD"
    for key in LENGTHS:
        s, a, t = key
        folder = root / f"Subject{s}"
        folder.mkdir(parents=True, exist_ok=True)
        fields = {
            "title": "USC Human Motion Database",
            "subject": str(s),
            "activity": usc.LABEL_NAMES[a - 1],
            "trial": str(t),
            "sensor_readings": readings_for(key),
        }
        if key == (1, 2, 1):
            fields["activity_numbr"] = "9"  # the release's misspelled field, here with a wrong value
        else:
            fields["activity_number"] = str(a)
        savemat(folder / f"a{a}t{t}.mat", fields)
    (root / "Readme.txt").write_text("not a subject folder\n")
    return root


def test_windows_labels_and_modalities(usc_root: pathlib.Path) -> None:
    ds = load_usc_had(usc_root)
    expected = sum((n - 200) // 100 + 1 for n in LENGTHS.values() if n >= 200)
    assert len(ds) == expected
    assert ds.modalities == ["acc", "gyro"]
    assert ds.inputs["acc"].shape == (expected, 200, 3) and ds.inputs["acc"].dtype == np.float32
    assert ds.inputs["gyro"].shape == (expected, 200, 3)
    assert ds.label_names[7] == "sitting" and len(ds.label_names) == 12
    # Labels, subjects and trials come from the path: acc x/y/z carry subject, activity, trial.
    np.testing.assert_array_equal(ds.inputs["acc"][:, 0, 0], ds.subjects)
    np.testing.assert_array_equal(ds.inputs["acc"][:, 0, 1], ds.labels + 1)
    assert "s2_a8_t2" in ds.meta["too_short_trials"]
    assert not any(t.startswith("s2_a8_t2") for t in ds.trial_ids)


def test_label_from_file_name_not_misspelled_metadata(usc_root: pathlib.Path) -> None:
    ds = load_usc_had(usc_root)
    rows = [i for i, t in enumerate(ds.trial_ids) if t.startswith("s1_a2_t1_")]
    assert rows and set(ds.labels[rows].tolist()) == {1}  # a2 -> label 1, not the metadata's 9
    assert ds.meta["metadata_mismatches"] == ["s1_a2_t1"]


def test_windows_stay_within_a_trial_with_50_percent_overlap(usc_root: pathlib.Path) -> None:
    ds = load_usc_had(usc_root)
    key = (13, 8, 1)
    raw = readings_for(key)
    rows = [i for i, t in enumerate(ds.trial_ids) if t.startswith("s13_a8_t1_")]
    assert len(rows) == (LENGTHS[key] - 200) // 100 + 1
    for k, row in enumerate(rows):
        np.testing.assert_allclose(ds.inputs["gyro"][row], raw[100 * k : 100 * k + 200, 3:6], rtol=1e-6)
    # Every window's sample index (gyro z) runs 200 consecutive steps: none crosses a trial boundary.
    np.testing.assert_array_equal(np.diff(ds.inputs["gyro"][:, :, 2], axis=1), 1.0)


def test_window_geometry_is_configurable(usc_root: pathlib.Path) -> None:
    ds = load_usc_had(usc_root, window_s=1.0, overlap=0.0, subjects=[1])
    assert ds.inputs["acc"].shape[1:] == (100, 3)
    assert set(ds.subjects.tolist()) == {1}
    assert len(ds) == sum(n // 100 for k, n in LENGTHS.items() if k[0] == 1)
    with pytest.raises(ValueError):
        usc.window_geometry(2.0, 1.0)


def test_split_by_subject_and_label_rate(usc_root: pathlib.Path) -> None:
    ds = load_usc_had(usc_root)
    split, test = usc_split(ds, rate_percent=10, seed=3)
    assert set(ds.subjects[split.validation].tolist()) == {11}
    assert set(ds.subjects[test].tolist()) == {13}
    pool = np.flatnonzero(np.isin(ds.subjects, [1, 2]))
    np.testing.assert_array_equal(np.sort(np.concatenate([split.labeled, split.unlabeled])), pool)
    assert not set(split.labeled) & set(split.unlabeled)
    for label in (0, 1, 7):
        n_c = int(np.sum(ds.labels[pool] == label))
        assert np.sum(ds.labels[split.labeled] == label) == max(1, int(np.floor(0.1 * n_c + 0.5)))
    again, _ = usc_split(ds, rate_percent=10, seed=3)
    np.testing.assert_array_equal(again.labeled, split.labeled)
    other, _ = usc_split(ds, rate_percent=10, seed=4)
    assert not np.array_equal(other.labeled, split.labeled)
    with pytest.raises(ValueError):
        usc_split(ds, 1, 0, pool_subjects=(1, 11))


def test_labeled_count_rule() -> None:
    assert usc.labeled_count(1, 20) == 1  # 0.2 rounds to 0, floor of one
    assert usc.labeled_count(1, 250) == 3  # 2.5 rounds half up
    assert usc.labeled_count(2, 1700) == 34


def test_per_channel_normalisation_from_pool_only(usc_root: pathlib.Path) -> None:
    ds = load_usc_had(usc_root)
    split, _ = usc_split(ds, 1, 0)
    pool = np.concatenate([split.labeled, split.unlabeled])
    norm = usc.fit_normalization(ds, pool)
    out = norm.apply({m: ds.inputs[m][pool] for m in ds.modalities})
    for name in ("acc", "gyro"):
        varying = out[name].reshape(-1, 3).std(axis=0) > 0
        np.testing.assert_allclose(out[name].reshape(-1, 3).mean(axis=0), 0.0, atol=1e-3)
        np.testing.assert_allclose(out[name].reshape(-1, 3).std(axis=0)[varying], 1.0, rtol=1e-3)
    # Statistics come from the pool only: acc x carries the subject id (pool: 1 and 2; all: up to 13).
    assert norm.stats["acc"]["mean"][0] == pytest.approx(ds.subjects[pool].mean(), rel=1e-6)
    assert norm.stats["acc"]["mean"][0] < 2.0 < ds.subjects.mean()


def test_load_dataset_dispatches_and_errors(usc_root: pathlib.Path, tmp_path: pathlib.Path) -> None:
    ds = load_dataset(usc_root, modalities=["gyro"])
    assert ds.modalities == ["gyro"] and ds.meta["source"] == "usc-had"
    empty = tmp_path / "empty"
    (empty / "Subject1").mkdir(parents=True)
    with pytest.raises(DataRootError, match="Subject<s>/a<a>t<t>.mat"):
        load_usc_had(empty)

"""UTD-MHAD loader on a small fake copy (always) and on the real data (skipped when absent)."""

import os
import pathlib
from typing import Dict, Optional

import numpy as np
import pytest
from scipy.io import savemat

import cosmo_edge.preprocess as preprocess
from cosmo_edge.cli import main
from cosmo_edge.datasets import (
    DataRootError,
    cross_subject_split,
    label_rate_split,
    load_dataset,
    load_generic,
    load_utd_mhad,
    read_manifest,
    resolve_data_root,
)
from cosmo_edge.datasets import utd_mhad as utd

REPO = pathlib.Path(__file__).resolve().parents[1]
FAKE_KEYS = [(a, s, t) for a in (1, 2, 3) for s in (1, 2) for t in (1, 2)]


def real_data_root() -> Optional[pathlib.Path]:
    """COSMO_DATA, else ../shared/data/utd-mhad beside the checkout; None when neither is there."""
    for candidate in (os.environ.get("COSMO_DATA"), REPO.parent / "shared" / "data" / "utd-mhad"):
        if candidate and (pathlib.Path(candidate) / "Inertial").is_dir():
            return pathlib.Path(candidate)
    return None


@pytest.fixture
def fake_root(tmp_path: pathlib.Path) -> pathlib.Path:
    """12 trials of 3 actions x 2 subjects x 2 trials, minus a3_s2_t2; a2_s2_t1 lacks its skeleton."""
    root = tmp_path / "utd"
    for folder in ("Inertial", "Skeleton", "Depth"):
        (root / folder).mkdir(parents=True)
    rng = np.random.default_rng(0)
    for a, s, t in FAKE_KEYS:
        if (a, s, t) == (3, 2, 2):
            continue
        name = f"a{a}_s{s}_t{t}"
        frames = 41 + a + t
        savemat(root / "Inertial" / f"{name}_inertial.mat", {"d_iner": rng.normal(size=(107 + 10 * a, 6))})
        if (a, s, t) != (2, 2, 1):
            savemat(root / "Skeleton" / f"{name}_skeleton.mat", {"d_skel": rng.normal(size=(20, 3, frames))})
        depth = rng.integers(0, 4000, size=(120, 160, frames)).astype(np.uint16)
        savemat(root / "Depth" / f"{name}_depth.mat", {"d_depth": depth})
    (root / "Skeleton" / "Skeleton_joint_order.txt").write_text("head; ...\n")
    return root


def test_fake_root_loads_present_trials_in_shared_shapes(fake_root: pathlib.Path) -> None:
    ds = load_utd_mhad(fake_root, ("imu", "skeleton", "depth"), use_cache=False)
    assert len(ds) == 10  # 12 minus the absent trial minus the one without a skeleton
    assert "a3_s2_t2" in ds.meta["absent_trials"] and "a2_s2_t1" not in ds.trial_ids
    assert ds.input_shapes() == {"imu": (120, 6), "skeleton": (40, 20, 3), "depth": (40, 60, 80)}
    assert (
        sorted(set(ds.labels)) == [0, 1, 2]
        and ds.label_names[0] == "swipe left"
        and len(ds.label_names) == 27
    )
    i = ds.trial_ids.index("a2_s1_t2")
    assert ds.labels[i] == 1 and ds.subjects[i] == 1
    raw_skel = utd.read_raw(fake_root, (2, 1, 2), "skeleton")
    assert raw_skel.shape == (41 + 2 + 2, 20, 3)
    np.testing.assert_allclose(ds.inputs["skeleton"][i], preprocess.prepare_skeleton(raw_skel))
    raw_depth = utd.read_raw(fake_root, (2, 1, 2), "depth")
    assert raw_depth.dtype == np.uint16 and raw_depth.shape[1:] == (120, 160)
    np.testing.assert_allclose(ds.inputs["depth"][i], preprocess.prepare_depth(raw_depth), rtol=1e-6)
    assert ds.inputs["depth"].max() < 4.0  # millimetres became metres


def test_cache_hits_and_invalidates_on_preprocessing_or_data_change(
    fake_root: pathlib.Path, tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "cache"
    builds = []
    real_build = utd._build

    def counting_build(root: pathlib.Path, modalities: list) -> object:
        builds.append(list(modalities))
        return real_build(root, modalities)

    monkeypatch.setattr(utd, "_build", counting_build)
    first = load_utd_mhad(fake_root, ("imu",), cache_dir=cache)
    again = load_utd_mhad(fake_root, ("imu",), cache_dir=cache)
    assert builds == [["imu"]]
    np.testing.assert_array_equal(first.inputs["imu"], again.inputs["imu"])
    assert again.trial_ids == first.trial_ids and np.array_equal(again.labels, first.labels)
    # A modality the entry lacks rebuilds it with the union; then both come from the cache.
    both = load_utd_mhad(fake_root, ("skeleton", "imu"), cache_dir=cache)
    assert builds[-1] == ["skeleton", "imu"] and both.modalities == ["skeleton", "imu"]
    load_utd_mhad(fake_root, ("imu",), cache_dir=cache)
    assert len(builds) == 2
    monkeypatch.setattr(preprocess, "PREPROCESS_VERSION", preprocess.PREPROCESS_VERSION + 1)
    load_utd_mhad(fake_root, ("imu",), cache_dir=cache)
    assert len(builds) == 3
    savemat(fake_root / "Inertial" / "a1_s1_t1_inertial.mat", {"d_iner": np.zeros((200, 6))})
    changed = load_utd_mhad(fake_root, ("imu",), cache_dir=cache)
    assert len(builds) == 4 and np.abs(changed.inputs["imu"][0]).max() == 0.0
    assert len([p for p in cache.iterdir() if not p.name.startswith(".")]) == 3


def test_cached_arrays_equal_fresh_ones_for_every_modality(
    fake_root: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    mods = ("imu", "skeleton", "depth")
    fresh = load_utd_mhad(fake_root, mods, use_cache=False)
    load_utd_mhad(fake_root, mods, cache_dir=tmp_path)
    cached = load_utd_mhad(fake_root, mods, cache_dir=tmp_path)
    assert cached.trial_ids == fresh.trial_ids and cached.meta["absent_trials"] == fresh.meta["absent_trials"]
    for mod in mods:
        np.testing.assert_array_equal(cached.inputs[mod], fresh.inputs[mod])  # depth stays metres


def test_cache_dir_from_environment(fake_root: pathlib.Path, tmp_path: pathlib.Path, monkeypatch) -> None:
    monkeypatch.setenv("COSMO_CACHE", str(tmp_path / "envcache"))
    load_utd_mhad(fake_root, ("imu",))
    assert any(p.name.startswith("utd-mhad-") for p in (tmp_path / "envcache").iterdir())


def test_data_root_errors_are_one_line(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COSMO_DATA", raising=False)
    with pytest.raises(DataRootError, match="COSMO_DATA=DIR"):
        resolve_data_root(None)
    monkeypatch.setenv("COSMO_DATA", "/x/not/here")
    with pytest.raises(DataRootError) as info:
        resolve_data_root(None)
    assert str(info.value).startswith("COSMO_DATA=/x/not/here:") and "\n" not in str(info.value)
    assert "Inertial/ Skeleton/ Depth/" in str(info.value)
    with pytest.raises(DataRootError, match="--data-root="):
        resolve_data_root(str(tmp_path))  # the flag wins over the environment
    (tmp_path / "Inertial").mkdir()
    assert resolve_data_root(str(tmp_path)) == tmp_path
    with pytest.raises(DataRootError, match="Inertial/ folder"):
        load_utd_mhad(tmp_path, ("imu",), use_cache=False)


def test_cli_wrong_root_prints_one_line_and_exits_2(tmp_path: pathlib.Path, capsys) -> None:
    assert main(["convert-dataset", "--data-root", str(tmp_path / "nope"), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "expected Inertial/ Skeleton/ Depth/" in err


@pytest.mark.parametrize("prepared", [False, True])
def test_convert_dataset_round_trip(fake_root: pathlib.Path, tmp_path: pathlib.Path, prepared: bool) -> None:
    out = tmp_path / "generic"
    argv = ["convert-dataset", "--data-root", str(fake_root), "--out", str(out), "--modalities", "imu,depth"]
    assert main(argv + (["--prepared"] if prepared else [])) == 0
    manifest = read_manifest(out)
    rec = manifest["recordings"][0]
    assert rec["id"] == "a1_s1_t1" and rec["label_name"] == "swipe left"
    expected_shape = [40, 60, 80] if prepared else [43, 120, 160]
    assert rec["modalities"]["depth"]["shape"] == expected_shape
    assert rec["modalities"]["imu"]["rate_hz"] == (None if prepared else 50.0)  # prepared: whole-trial length
    direct = load_utd_mhad(fake_root, ("imu", "depth"), use_cache=False)
    for loaded in (load_generic(out), load_dataset(out)):
        assert loaded.trial_ids == direct.trial_ids and np.array_equal(loaded.subjects, direct.subjects)
        for mod in ("imu", "depth"):
            np.testing.assert_allclose(loaded.inputs[mod], direct.inputs[mod], rtol=1e-6, atol=1e-7)
    assert main(argv) == 2  # refuses to overwrite an existing dataset


REAL = real_data_root()
needs_real = pytest.mark.skipif(REAL is None, reason="UTD-MHAD not found (set COSMO_DATA)")


@pytest.fixture(scope="module")
def real_ds(tmp_path_factory: pytest.TempPathFactory) -> Dict[str, object]:
    assert REAL is not None
    ds = load_utd_mhad(REAL, ("imu", "skeleton"), cache_dir=tmp_path_factory.mktemp("cache"))
    return {"ds": ds}


@pytest.mark.dataset
@needs_real
def test_real_counts_labels_and_absent_trials(real_ds: Dict[str, object]) -> None:
    ds = real_ds["ds"]
    assert len(ds) == 861 and sorted(ds.meta["absent_trials"]) == sorted(utd.KNOWN_ABSENT)
    counts = np.bincount(ds.labels, minlength=27)
    assert counts[[7, 22, 26]].tolist() == [31, 31, 31] and (np.delete(counts, [7, 22, 26]) == 32).all()
    assert np.bincount(ds.subjects)[1:].tolist() == [107, 108, 108, 108, 108, 107, 108, 107]
    assert ds.label_names[8] == "draw circle (clockwise)" and ds.label_names[26] == "squat"
    assert np.isfinite(ds.inputs["imu"]).all() and 2.0 < ds.inputs["skeleton"][..., 2].mean() < 3.5


@pytest.mark.dataset
@needs_real
def test_real_split_table(real_ds: Dict[str, object]) -> None:
    ds = real_ds["ds"]
    pool, test = cross_subject_split(ds, range(1, 7), (7, 8))
    assert (len(pool), len(test)) == (646, 215)
    spec = {5: (27, 513), 10: (54, 486), 15: (81, 459), 20: (108, 432), 30: (162, 378), 40: (216, 324)}
    for rate, counts in spec.items():
        split = label_rate_split(ds, pool, rate, seed=0)
        assert (len(split.labeled), len(split.unlabeled), len(split.validation)) == counts + (106,)


@pytest.mark.dataset
@pytest.mark.slow
@needs_real
def test_real_depth_trial() -> None:
    assert REAL is not None
    raw = utd.read_raw(REAL, (1, 1, 1), "depth")
    assert raw.shape == (48, 240, 320) and raw.dtype == np.uint16
    assert raw.shape[0] == utd.read_raw(REAL, (1, 1, 1), "skeleton").shape[0]
    depth = utd.prepare_raw("depth", raw)
    assert depth.shape == (40, 60, 80) and 0.02 < (depth > 0).mean() < 0.3
    assert 1.5 < depth[depth > 0].mean() < 3.5  # the person stands about 2.9 m away

"""The generic .npz + manifest format: round trip, preparation, and deliberately broken datasets."""

import json
import pathlib
from typing import List

import numpy as np
import pytest

from cosmo_edge.datasets import (
    DataRootError,
    DatasetFormatError,
    GenericRecording,
    load_dataset,
    load_generic,
    read_manifest,
    write_generic,
)
from cosmo_edge.preprocess import prepare_depth, prepare_imu

LABELS = ["sit", "stand", "walk"]


def raw_recordings(count: int = 6, seed: int = 0) -> List[GenericRecording]:
    """Variable-length raw recordings: IMU at 100 Hz, 480 x 640 depth in mm, and an extra 'ppg' stream."""
    rng = np.random.default_rng(seed)
    recs = []
    for i in range(count):
        n_imu, n_depth = 150 + 7 * i, 20 + i
        recs.append(
            GenericRecording(
                recording_id=f"r{i:03d}",
                subject=1 + i % 3,
                label=i % 3,
                arrays={
                    "imu": rng.normal(size=(n_imu, 6)),
                    "depth": rng.integers(0, 5000, size=(n_depth, 48, 64)).astype(np.uint16),
                    "ppg": rng.normal(size=(32, 1)).astype(np.float32),
                },
                rates_hz={"imu": 100.0, "depth": 15.0, "ppg": 25.0},
            )
        )
    return recs


@pytest.fixture
def generic_root(tmp_path: pathlib.Path) -> pathlib.Path:
    root = tmp_path / "ds"
    write_generic(root, raw_recordings(), LABELS, "toy", {"depth": {"depth_scale_m": 0.001}})
    return root


def test_round_trip_prepares_like_the_shared_code(generic_root: pathlib.Path) -> None:
    recs = raw_recordings()
    ds = load_generic(generic_root)
    assert ds.modalities == ["imu", "depth", "ppg"] and len(ds) == 6
    assert ds.input_shapes() == {"imu": (120, 6), "depth": (40, 60, 80), "ppg": (32, 1)}
    assert ds.trial_ids == [r.recording_id for r in recs] and ds.label_names == LABELS
    np.testing.assert_array_equal(ds.labels, [r.label for r in recs])
    np.testing.assert_array_equal(ds.subjects, [r.subject for r in recs])
    np.testing.assert_allclose(ds.inputs["imu"][2], prepare_imu(recs[2].arrays["imu"]))
    np.testing.assert_allclose(
        ds.inputs["depth"][4], prepare_depth(recs[4].arrays["depth"], 0.001), rtol=1e-6
    )
    np.testing.assert_array_equal(ds.inputs["ppg"][1], recs[1].arrays["ppg"])
    manifest = read_manifest(generic_root)
    rec = manifest["recordings"][3]
    assert rec["modalities"]["imu"] == {"array": "imu", "shape": [171, 6], "rate_hz": 100.0}
    assert rec["label_name"] == "sit" and (generic_root / rec["file"]).is_file()
    only = load_dataset(generic_root, ["depth"])
    assert only.modalities == ["depth"] and len(only) == 6


def edit_manifest(root: pathlib.Path, change) -> None:
    path = root / "manifest.json"
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def test_recordings_without_a_requested_modality_are_skipped(generic_root: pathlib.Path) -> None:
    edit_manifest(generic_root, lambda m: m["recordings"][0]["modalities"].pop("depth"))
    ds = load_generic(generic_root, ["imu", "depth"])
    assert len(ds) == 5 and ds.meta["skipped"] == ["r000"]
    assert len(load_generic(generic_root, ["imu"])) == 6


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda m: m.update(format="other"), "expected format"),
        (lambda m: m["recordings"][1].update(label=7), "outside label_names"),
        (lambda m: m["recordings"][1].update(label_name="run"), "disagrees"),
        (lambda m: m["recordings"][2]["modalities"]["imu"].update(shape=[10, 6]), "manifest says"),
        (lambda m: m["recordings"][2].update(file="recordings/missing.npz"), "cannot read"),
        (lambda m: m["recordings"][2]["modalities"]["imu"].update(array="nope"), "cannot read"),
        (lambda m: m["recordings"][3].pop("subject"), "lacks"),
    ],
)
def test_broken_manifests_name_the_problem(generic_root: pathlib.Path, change, message: str) -> None:
    edit_manifest(generic_root, change)
    with pytest.raises(DatasetFormatError, match=message):
        load_generic(generic_root)


def test_unprepared_extra_modality_must_share_a_shape(tmp_path: pathlib.Path) -> None:
    recs = raw_recordings(3)
    recs[1].arrays["ppg"] = np.zeros((31, 1), np.float32)
    write_generic(tmp_path, recs, LABELS, "toy")
    with pytest.raises(DatasetFormatError, match="ppg arrays differ in shape"):
        load_generic(tmp_path)
    with pytest.raises(DatasetFormatError, match="not in the manifest"):
        load_generic(tmp_path, ["radar"])


def test_missing_manifest_and_bad_json(tmp_path: pathlib.Path) -> None:
    with pytest.raises(DataRootError, match="manifest.json"):
        load_generic(tmp_path)
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(DatasetFormatError, match="not valid JSON"):
        load_generic(tmp_path)


def test_wrong_label_is_refused_when_writing(tmp_path: pathlib.Path) -> None:
    rec = raw_recordings(1)[0]
    rec.label = 5
    with pytest.raises(DatasetFormatError, match="outside label_names"):
        write_generic(tmp_path, [rec], LABELS, "toy")

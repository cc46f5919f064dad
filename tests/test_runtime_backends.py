"""Backend interface: selection, batch validation, warm-up self-test, ONNX Runtime session settings."""

import logging

import numpy as np
import pytest
import torch
from runtime_models import build_artifact

from cosmo_edge.runtime import (
    BackendError,
    BackendUnavailable,
    BatchError,
    create_backend,
    select_backend,
)
from cosmo_edge.runtime.base import prepare_batch


@pytest.fixture(scope="module")
def artifact():
    return build_artifact(("imu", "skeleton"))


def test_auto_without_tensorrt_picks_onnxruntime_and_logs_why(caplog) -> None:
    with caplog.at_level(logging.INFO, logger="cosmo_edge.runtime.base"):
        backend = select_backend("auto")
    assert backend.name == "onnxruntime"
    text = caplog.text
    assert "skipping tensorrt" in text and "chose onnxruntime" in text


def test_explicit_unavailable_backend_names_the_reason() -> None:
    with pytest.raises(BackendUnavailable, match="tensorrt"):
        select_backend("tensorrt")
    with pytest.raises(BackendError, match="unknown backend"):
        select_backend("cuda")


def test_auto_falls_back_to_torch_without_onnxruntime(monkeypatch) -> None:
    from cosmo_edge.runtime.onnx_backend import OnnxRuntimeBackend

    monkeypatch.setattr(OnnxRuntimeBackend, "availability", classmethod(lambda cls: (False, "test")))
    assert select_backend("auto").name == "torch"


def test_prepare_batch_rules(artifact) -> None:
    batch = artifact.example_batch(3)
    arrays = prepare_batch(batch, artifact.modalities, artifact.input_shapes)
    assert [a.shape for a in arrays] == [(3, 120, 6), (3, 40, 20, 3), (3, 2)]
    del batch["present"]
    assert np.all(prepare_batch(batch, artifact.modalities, artifact.input_shapes)[-1] == 1)
    cases = [
        ({k: v for k, v in batch.items() if k != "imu"}, "missing"),
        (dict(batch, depth=np.zeros((3, 40, 60, 80))), "unknown"),
        (dict(batch, imu=np.zeros((3, 60, 6))), "imu: shape"),
        (dict(batch, imu=np.zeros((2, 120, 6))), "batch size"),
        (dict(batch, imu=np.full((3, 120, 6), np.nan)), "NaN"),
        (dict(batch, present=np.full((3, 2), 0.5)), "0 or 1"),
        (dict(batch, present=np.array([[1, 1], [0, 0], [1, 0]])), r"samples \[1\]"),
    ]
    for bad, message in cases:
        with pytest.raises(BatchError, match=message):
            prepare_batch(bad, artifact.modalities, artifact.input_shapes)


@pytest.mark.parametrize("name", ["torch", "onnxruntime"])
def test_predict_and_warmup(name, artifact, tmp_path) -> None:
    backend = create_backend(name, cache_dir=tmp_path)
    with pytest.raises(BackendError, match="no model loaded"):
        backend.predict(artifact.example_batch(1))
    backend.load(artifact)
    assert backend.warmup(iterations=2) > 0
    probs = backend.predict(artifact.example_batch(4, seed=3))
    assert probs.shape == (4, artifact.num_classes) and probs.dtype == np.float32
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)


def test_absent_modality_changes_prediction_but_its_values_do_not(artifact) -> None:
    backend = create_backend("torch")
    backend.load(artifact)
    batch = artifact.example_batch(2, seed=1)
    batch["present"] = np.array([[1, 0], [1, 0]], dtype=np.float32)
    other = dict(batch, skeleton=batch["skeleton"] * 3 + 1)
    np.testing.assert_allclose(backend.predict(batch), backend.predict(other), atol=1e-6)
    both = dict(batch, present=np.ones((2, 2), dtype=np.float32))
    assert not np.allclose(backend.predict(both), backend.predict(batch))


def test_onnxruntime_session_options_and_export_cache(artifact, tmp_path, monkeypatch) -> None:
    from cosmo_edge.runtime import onnx_backend

    backend = create_backend("onnxruntime", threads=2, cache_dir=tmp_path)
    backend.load(artifact)
    options = backend._session.get_session_options()
    assert options.intra_op_num_threads == 2 and options.inter_op_num_threads == 1
    assert options.execution_mode.name == "ORT_SEQUENTIAL"
    assert backend.model_path.parent == tmp_path and backend.model_path.exists()

    def no_export(*args, **kwargs):
        raise AssertionError("a cached export must be reused")

    monkeypatch.setattr(onnx_backend, "export_onnx", no_export)
    again = create_backend("onnxruntime", cache_dir=tmp_path)
    again.load(artifact)
    assert again.model_path == backend.model_path
    backend.model_path.write_bytes(b"not an onnx file")
    monkeypatch.undo()
    third = create_backend("onnxruntime", cache_dir=tmp_path)
    third.load(artifact)  # a corrupt cached export is exported again
    np.testing.assert_allclose(
        third.predict(artifact.example_batch(2)), backend.predict(artifact.example_batch(2))
    )


def test_load_artifact_from_a_training_checkpoint(tmp_path) -> None:
    from runtime_models import SHAPES, build_classifier

    from cosmo_edge.runtime import load_artifact
    from cosmo_edge.runtime.artifacts import sha256_file
    from cosmo_edge.training.checkpoint import save_checkpoint

    model = build_classifier(("radar", "imu"))
    path = save_checkpoint(
        tmp_path / "model.pt",
        "classifier",
        model,
        model.model_args(),
        {m: SHAPES[m] for m in ("radar", "imu")},
        [f"c{i}" for i in range(5)],
        normalization={"imu": {"mean": [0.0]}},
        qom=None,
        metrics={},
        config={},
    )
    artifact = load_artifact(path)
    assert artifact.modalities == ["radar", "imu"] and artifact.input_shapes["radar"] == (20, 64, 4)
    assert artifact.sha256 == sha256_file(path) and artifact.version == artifact.sha256[:12]
    assert artifact.normalization == {"imu": {"mean": [0.0]}} and artifact.label_names[0] == "c0"
    backend = create_backend("torch")
    backend.load(artifact)
    batch = artifact.example_batch(2)
    with torch.no_grad():
        expected = torch.softmax(model({m: torch.from_numpy(batch[m]) for m in ("radar", "imu")}), 1)
    np.testing.assert_allclose(backend.predict(batch), expected.numpy(), atol=1e-6)

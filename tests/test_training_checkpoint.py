"""Checkpoints: plain dicts, weights_only loading, strict keys, identical predictions after reload."""

import pytest
import torch
from torch import nn

from cosmo_edge.preprocess import Normalization
from cosmo_edge.training.checkpoint import (
    CheckpointError,
    load_classifier,
    load_pretrained,
    pretrain_model_args,
    read_checkpoint,
    save_checkpoint,
)
from models.classifier import FusionClassifier
from models.cosmo import CosmoPretrainModel
from models.encoders import build_encoder

SHAPES = {"imu": (30, 6), "skeleton": (10, 20, 3)}


def make_classifier() -> FusionClassifier:
    torch.manual_seed(0)
    encoders = nn.ModuleDict({m: build_encoder(m, s, channels=[8, 16]) for m, s in SHAPES.items()})
    return FusionClassifier(encoders, 4, [0.25, 0.75], qom_lambda=0.6, hidden_dim=32)


def save_classifier_file(path, model: FusionClassifier):
    normalization = Normalization().fit({m: torch.randn((5,) + s).numpy() for m, s in SHAPES.items()})
    qom = {"modalities": list(SHAPES), "weights": [0.25, 0.75]}
    return save_checkpoint(
        path, "classifier", model, model.model_args(), SHAPES, ["a", "b", "c", "d"],
        normalization.to_dict(), qom, {"stage2": {"accuracy": 0.5}}, {"seed": 0},
    )  # fmt: skip


def test_classifier_round_trip_gives_identical_logits(tmp_path) -> None:
    model = make_classifier().eval()
    path = save_classifier_file(tmp_path / "classifier.pt", model)
    raw = torch.load(str(path), weights_only=True)  # plain dict, no pickled objects
    assert raw["modalities"] == {"imu": [30, 6], "skeleton": [10, 20, 3]}
    loaded, meta = load_classifier(path)
    inputs = {m: torch.randn((3,) + s) for m, s in SHAPES.items()}
    assert torch.allclose(model(inputs), loaded(inputs))
    assert meta["label_names"] == ["a", "b", "c", "d"]
    assert Normalization.from_dict(meta["normalization"]).stats.keys() == set(SHAPES)
    assert "state_dict" not in meta


def test_unexpected_and_missing_top_level_keys_are_named(tmp_path) -> None:
    path = save_classifier_file(tmp_path / "c.pt", make_classifier())
    payload = torch.load(str(path), weights_only=True)
    payload["extra_field"] = 1
    del payload["qom"]
    torch.save(payload, tmp_path / "bad.pt")
    with pytest.raises(CheckpointError, match=r"missing keys \['qom'\].*unexpected keys \['extra_field'\]"):
        read_checkpoint(tmp_path / "bad.pt")


def test_state_dict_key_mismatch_is_named(tmp_path) -> None:
    path = save_classifier_file(tmp_path / "c.pt", make_classifier())
    payload = torch.load(str(path), weights_only=True)
    state = payload["state_dict"]
    key = next(k for k in state if k.startswith("encoders.imu."))
    state["module." + key] = state.pop(key)  # the classic prefix mismatch
    torch.save(payload, tmp_path / "prefixed.pt")
    with pytest.raises(CheckpointError) as error:
        load_classifier(tmp_path / "prefixed.pt")
    assert key in str(error.value) and "module." + key in str(error.value)


def test_wrong_kind_and_foreign_files_are_rejected(tmp_path) -> None:
    path = save_classifier_file(tmp_path / "c.pt", make_classifier())
    with pytest.raises(CheckpointError, match="expected 'stage1'"):
        load_pretrained(path)
    torch.save({"state_dict": {}}, tmp_path / "foreign.pt")
    with pytest.raises(CheckpointError, match="not a cosmo-edge checkpoint"):
        load_classifier(tmp_path / "foreign.pt")


def test_stage1_round_trip(tmp_path) -> None:
    encoders = make_classifier().encoders
    model = CosmoPretrainModel(encoders, proj_dim=16, head_hidden=32).eval()
    path = save_checkpoint(
        tmp_path / "stage1.pt",
        "stage1",
        model,
        pretrain_model_args(model, 32),
        SHAPES,
        ["a"],
        None,
        None,
        {},
        {},
    )
    loaded, meta = load_pretrained(path)
    loaded.eval()
    inputs = {m: torch.randn((2,) + s) for m, s in SHAPES.items()}
    assert torch.allclose(model(inputs), loaded(inputs))
    assert meta["kind"] == "stage1"

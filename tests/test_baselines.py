"""Baselines of the accuracy study: architectures, losses, the method registry and the CLI --method."""

import pathlib

import pytest
import torch
from torch import nn

from cosmo_edge.cli import main
from cosmo_edge.training.baselines import (
    METHODS,
    MethodError,
    finetune_method,
    load_method_classifier,
    load_method_pretrained,
    needs_pretraining,
    pretrain_method,
    save_method_pretrain,
)
from cosmo_edge.training.cmc import cmc_loss
from cosmo_edge.training.config import RunConfig, apply_overrides
from cosmo_edge.training.contrastive import contrastive_fusion_loss
from cosmo_edge.training.data import load_dataset, prepare_experiment
from cosmo_edge.training.metrics import predict
from cosmo_edge.training.rundir import save_classifier
from models.baselines import CPCClassifier, CPCModel, SequenceGRUClassifier, build_baseline
from models.classifier import FusionClassifier
from models.encoders import build_encoder

SHAPES = {"imu": (120, 6), "skeleton": (40, 20, 3)}
SMALL = {
    "data.dataset": "synthetic",
    "model.encoders.imu.channels": [8, 8],
    "model.encoders.skeleton.channels": [8, 8],
    "model.hidden_dim": 16,
    "stage1.epochs": 1,
    "stage1.batch_size": 32,
    "stage1.num_views": 3,
    "stage2.epochs": 2,
    "stage2.eval_every": 1,
    "supervised.epochs": 2,
    "supervised.eval_every": 1,
    "qom.kmeans_n_init": 1,
    "qom.hopkins_repeats": 1,
}


def small_encoders() -> nn.ModuleDict:
    return nn.ModuleDict({m: build_encoder(m, s, channels=[8, 8]) for m, s in SHAPES.items()})


def batch(n: int = 4, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    return {m: torch.randn((n,) + s, generator=generator) for m, s in SHAPES.items()}


@pytest.fixture(scope="module")
def setup():
    config = apply_overrides(RunConfig(), SMALL)
    data = prepare_experiment(load_dataset(config.data, 0), config.data, 0)
    return config, data


def test_sequence_gru_rebuilds_from_its_args() -> None:
    torch.manual_seed(0)
    model = SequenceGRUClassifier(small_encoders(), 5, gru_hidden=16, hidden_dim=16).eval()
    x = batch()
    assert model(x).shape == (4, 5)
    twin = build_baseline(model.model_args())
    twin.load_state_dict(model.state_dict())
    assert torch.allclose(twin.eval()(x), model(x))
    single = SequenceGRUClassifier(nn.ModuleDict({"imu": build_encoder("imu", (120, 6))}), 3)
    assert single({"imu": x["imu"]}).shape == (4, 3)


def test_cpc_encoder_is_causal_and_classifier_round_trips() -> None:
    torch.manual_seed(0)
    cpc = CPCModel(SHAPES, steps=20, channels=(8, 8), context_dim=8).eval()
    x = batch()
    late = {m: v.clone() for m, v in x.items()}
    late["imu"][:, 100:] += 5.0  # only the last sixth of the window changes
    late["skeleton"][:, 34:] += 5.0
    z, c = cpc.latents_and_context(x)
    z_late, c_late = cpc.latents_and_context(late)
    assert torch.allclose(z[:, :15], z_late[:, :15]) and torch.allclose(c[:, :15], c_late[:, :15])
    assert not torch.allclose(z[:, -1], z_late[:, -1])
    cpc.train()
    loss = cpc.loss(x, num_anchors=4)
    loss.backward()
    assert torch.isfinite(loss) and all(p.grad is not None for p in cpc.predictors.parameters())
    classifier = CPCClassifier(cpc, 4, hidden_dim=8).eval()
    twin = build_baseline(classifier.model_args())
    twin.load_state_dict(classifier.state_dict())
    assert torch.allclose(twin.eval()(x), classifier(x))


def test_cmc_loss_is_the_two_view_loss_summed_over_pairs() -> None:
    projections = nn.functional.normalize(torch.randn(6, 3, 8), dim=-1)
    pairs = [(0, 1), (0, 2), (1, 2)]
    expected = sum(contrastive_fusion_loss(projections[:, list(p)], 0.1) for p in pairs)
    assert torch.allclose(cmc_loss(projections, 0.1), expected)
    aligned = nn.functional.normalize(torch.randn(6, 1, 8), dim=-1).expand(6, 2, 8)
    assert cmc_loss(aligned, 0.1) < cmc_loss(projections[:, :2], 0.1)


@pytest.mark.parametrize("method", METHODS)
def test_each_method_trains_and_evaluates(setup, method: str) -> None:
    config, data = setup
    pre = pretrain_method(method, config, data, progress=False) if needs_pretraining(method) else None
    modality = "skeleton" if method == "singlemodal" else None
    model, result = finetune_method(method, config, data, pre, progress=False, modality=modality)
    test = result["last"]["test"]
    assert 0.0 <= test["accuracy"] <= 1.0 and len(test["confusion"]) == data.num_classes
    assert [row["epoch"] for row in result["history"]] == [1, 2]
    predictions = predict(model, data.splits["test"][0])
    assert predictions.shape == (len(data.splits["test"][1]),)
    if method == "singlemodal":
        assert model.modalities == ["skeleton"]
    if method in ("attnsense", "cmc"):
        assert isinstance(model, FusionClassifier) and model.fusion.qom_lambda == 0.0


def test_registry_refuses_wrong_inputs(setup) -> None:
    config, data = setup
    with pytest.raises(MethodError, match="unknown method"):
        finetune_method("transformer", config, data)
    with pytest.raises(MethodError, match="needs its pre-trained"):
        finetune_method("cmc", config, data)
    with pytest.raises(MethodError, match="no pre-training"):
        pretrain_method("deepsense", config, data)
    with pytest.raises(MethodError, match="one modality"):
        finetune_method("singlemodal", config, data)


@pytest.mark.parametrize("method", ["cpc", "deepsense"])
def test_checkpoints_round_trip(setup, tmp_path: pathlib.Path, method: str) -> None:
    config, data = setup
    pre = None
    if method == "cpc":
        pre = pretrain_method("cpc", config, data, progress=False)
        path = save_method_pretrain(tmp_path / "stage1.pt", "cpc", config, data, pre)
        saved_method, loaded, _ = load_method_pretrained(path)
        assert saved_method == "cpc"
        assert all(torch.equal(a, b) for a, b in zip(loaded.model.parameters(), pre.model.parameters()))
    model, result = finetune_method(method, config, data, pre, progress=False)
    path = save_classifier(tmp_path, method, config, data, model, None, result)
    loaded, meta = load_method_classifier(path)
    x = data.splits["test"][0]
    assert (predict(loaded, x) == predict(model, x)).all()
    assert meta["model_args"]["architecture"] in ("cpc", "sequence-gru")


def test_usc_encoders_are_equally_wide_for_sum_fusion() -> None:
    encoders = nn.ModuleDict({m: build_encoder(m, (200, 3), channels=[8, 8]) for m in ("acc", "gyro")})
    assert encoders["acc"].feature_dim == encoders["gyro"].feature_dim
    model = FusionClassifier(encoders, 12, [0.5, 0.5], fusion_op="sum", hidden_dim=8).eval()
    assert model({m: torch.randn(3, 200, 3) for m in ("acc", "gyro")}).shape == (3, 12)


def test_cli_method_option(tmp_path: pathlib.Path, capsys) -> None:
    fast = ["--dataset", "synthetic", "--no-progress", "--seed", "1", "--label-rate", "10"]
    small = [item for key in ("model.encoders.imu.channels", "model.encoders.skeleton.channels")
             for item in ("--set", f"{key}=[8,8]")]  # fmt: skip
    run = tmp_path / "cmc"
    assert main(["pretrain", "--method", "cmc", *fast, "--epochs", "1", "--out", str(run), *small]) == 0
    assert "cmc: 1 epochs" in capsys.readouterr().out
    args = ["--set", "stage2.eval_every=1", "--out", str(run), "--epochs", "2"]
    assert main(["finetune", "--pretrained", str(run / "stage1.pt"), *fast, *args]) == 0
    assert "cmc: test accuracy" in capsys.readouterr().out
    assert main(["finetune", "--method", "cpc", "--pretrained", str(run / "stage1.pt"), *fast, *args]) == 2
    assert "checkpoint is from cmc" in capsys.readouterr().out
    assert main(["evaluate", "--checkpoint", str(run / "cmc.pt"), "--method", "cmc"]) == 0
    assert "test accuracy" in capsys.readouterr().out
    assert main(["evaluate", "--checkpoint", str(run / "cmc.pt"), "--method", "cosmo"]) == 2
    scratch = tmp_path / "deepsense"
    args = ["--out", str(scratch), "--epochs", "1", "--set", "supervised.eval_every=1", *small]
    assert main(["finetune", "--method", "deepsense", *fast, *args]) == 0
    assert "deepsense: test accuracy" in capsys.readouterr().out
    assert main(["evaluate", "--checkpoint", str(scratch / "deepsense.pt")]) == 0

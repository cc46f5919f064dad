"""Method registry for the accuracy study: Cosmo and the section-9 baselines behind one interface.

``METHODS`` lists what ``--method`` accepts. ``pretrain_method`` runs the unlabeled stage of the
methods that have one (cosmo: contrastive fusion + QoM; cmc: two-view contrastive; cpc: predictive
coding); ``finetune_method`` trains the labeled stage of any method, starting from that result where
the method has one. Every method uses the same ``ExperimentData`` splits, encoders (where the
architecture allows), stage-2 trainer and evaluation, so the comparison measures the method:

- ``supervised``: the Cosmo classifier from scratch, joint training, uniform prior at Cosmo's lambda;
- ``attnsense``: the same with lambda = 0 (attention only);
- ``singlemodal`` / ``deepsense``: encoder sequences + 2-layer GRU (one / all modalities);
- ``cmc``: CMC encoders, attention classifier with lambda = 0, joint fine-tuning;
- ``cpc``: CPC encoder + context GRU and a head, joint fine-tuning.
"""

import copy
import dataclasses
import logging
import pathlib
import time
from typing import Any, Dict, Optional, Tuple, Union

import torch
from torch import nn

from cosmo_edge.training import pipeline
from cosmo_edge.training.checkpoint import (
    load_pretrained,
    load_state_strict,
    pretrain_model_args,
    read_checkpoint,
    save_checkpoint,
)
from cosmo_edge.training.cmc import train_cmc
from cosmo_edge.training.config import RunConfig
from cosmo_edge.training.cpc import train_cpc
from cosmo_edge.training.data import ExperimentData
from cosmo_edge.training.qom import qom_weights_or_uniform
from cosmo_edge.training.stage2 import train_fusion_classifier
from cosmo_edge.training.supervised import train_supervised
from models.baselines import CPCClassifier, CPCModel, SequenceGRUClassifier, build_baseline
from models.classifier import build_fusion_classifier
from models.cosmo import CosmoPretrainModel

logger = logging.getLogger(__name__)

METHODS = ("cosmo", "supervised", "singlemodal", "deepsense", "attnsense", "cmc", "cpc")
PRETRAINED_METHODS = ("cosmo", "cmc", "cpc")
PathLike = Union[str, pathlib.Path]


class MethodError(ValueError):
    """An unknown method, or a method given the wrong inputs (missing / unneeded pre-training)."""


def check_method(method: str) -> str:
    """Return ``method`` if it is known, else raise MethodError listing the known ones."""
    if method not in METHODS:
        raise MethodError(f"unknown method {method!r} (known: {', '.join(METHODS)})")
    return method


def needs_pretraining(method: str) -> bool:
    """True for the methods whose labeled stage starts from an unlabeled pre-training stage."""
    return check_method(method) in PRETRAINED_METHODS


def pretrain_method(
    method: str, config: RunConfig, data: ExperimentData, progress: bool = True
) -> pipeline.PretrainResult:
    """The unlabeled stage of ``method`` on ``data.splits["unlabeled"]`` (labels never read)."""
    if not needs_pretraining(method):
        raise MethodError(f"method {method!r} has no pre-training stage")
    if method == "cosmo":
        return pipeline.pretrain(config, data, progress)
    torch.manual_seed(config.seed)
    inputs = data.splits["unlabeled"][0]
    started = time.perf_counter()
    if method == "cmc":
        encoders = pipeline.build_encoders_from_config(config, data.input_shapes)
        model: nn.Module = CosmoPretrainModel(encoders, config.stage1.proj_dim, config.stage1.head_hidden)
        history = train_cmc(model, inputs, config.stage1, config.seed, progress)
    else:
        shapes = {m: data.input_shapes[m] for m in config.data.modalities}
        model = CPCModel(shapes)
        history = train_cpc(model, inputs, config.stage1, config.seed, progress)
    seconds = time.perf_counter() - started
    logger.info("%s pre-training %.1f s", method, seconds)
    return pipeline.PretrainResult(model, None, history, {"stage1": seconds, "qom": 0.0})


def _joint(stage2: Any) -> Any:
    return dataclasses.replace(stage2, alternation="joint")


def finetune_method(
    method: str,
    config: RunConfig,
    data: ExperimentData,
    pretrained: Optional[pipeline.PretrainResult] = None,
    progress: bool = True,
    modality: Optional[str] = None,
) -> Tuple[nn.Module, Dict]:
    """Train the labeled stage of ``method``; return (model, stage-2 trainer result).

    ``pretrained`` is required for cosmo / cmc / cpc and refused otherwise. ``modality`` picks the
    SingleModal input (default: the only configured modality).
    """
    if needs_pretraining(method) and pretrained is None:
        raise MethodError(f"method {method!r} needs its pre-trained model")
    if not needs_pretraining(method) and pretrained is not None:
        raise MethodError(f"method {method!r} trains from scratch; do not pass a pre-trained model")
    evals = pipeline.eval_sets(data)
    labeled = data.splits["labeled"]
    if method == "cosmo":
        return pipeline.finetune(config, data, pretrained.model.encoders, pretrained.qom, progress)
    if method == "supervised":
        return pipeline.supervised(config, data, progress)
    if method == "attnsense":
        no_prior = dataclasses.replace(config, model=dataclasses.replace(config.model, qom_lambda=0.0))
        return pipeline.supervised(no_prior, data, progress)
    if method == "cmc":
        torch.manual_seed(config.seed + 1)
        encoders = copy.deepcopy(pretrained.model.encoders)
        weights = qom_weights_or_uniform(None, list(encoders.keys()))
        model = pipeline.make_classifier(config, encoders, data.num_classes, weights, 0.0)
        result = train_fusion_classifier(
            model, labeled, _joint(config.stage2), config.seed, evals, progress, "cmc"
        )
        return model, result
    if method == "cpc":
        torch.manual_seed(config.seed + 1)
        model = CPCClassifier(
            copy.deepcopy(pretrained.model), data.num_classes, config.model.hidden_dim, config.model.dropout
        )
        result = train_fusion_classifier(
            model, labeled, _joint(config.stage2), config.seed, evals, progress, "cpc"
        )
        return model, result
    torch.manual_seed(config.seed + 2)
    if method == "singlemodal":
        if modality is None:
            if len(config.data.modalities) != 1:
                raise MethodError(
                    f"singlemodal needs one modality (got {config.data.modalities}); pass modality="
                )
            modality = config.data.modalities[0]
        single = dataclasses.replace(config, data=dataclasses.replace(config.data, modalities=[modality]))
        encoders = pipeline.build_encoders_from_config(single, data.input_shapes)
    else:  # deepsense
        encoders = pipeline.build_encoders_from_config(config, data.input_shapes)
    model = SequenceGRUClassifier(
        encoders, data.num_classes, hidden_dim=config.model.hidden_dim, dropout=config.model.dropout
    )
    return model, train_supervised(model, labeled, config.supervised, config.seed, evals, progress)


def method_pretrain_args(method: str, model: nn.Module, config: RunConfig) -> Dict[str, Any]:
    """model_args of a pre-training checkpoint, tagged with the method."""
    if method == "cpc":
        shapes = model.model_args()["input_shapes"]
        encoders = {m: {"input_shape": list(s), "options": {}} for m, s in shapes.items()}
        return {"method": "cpc", "cpc": model.model_args(), "encoders": encoders}
    return dict(pretrain_model_args(model, config.stage1.head_hidden), method=method)


def save_method_pretrain(
    path: PathLike, method: str, config: RunConfig, data: ExperimentData, result: pipeline.PretrainResult
) -> pathlib.Path:
    """Write a stage-1 checkpoint of a cmc / cpc (or cosmo) pre-training result."""
    metrics = {
        "method": method,
        "final_loss": result.history[-1]["loss"] if result.history else None,
        "seconds": result.seconds["stage1"],
    }
    return save_checkpoint(
        path,
        "stage1",
        result.model,
        method_pretrain_args(method, result.model, config),
        data.input_shapes,
        data.label_names,
        data.normalization.to_dict(),
        result.qom,
        {"stage1": metrics},
        config.to_dict(),
    )


def load_method_pretrained(path: PathLike) -> Tuple[str, pipeline.PretrainResult, Dict[str, Any]]:
    """(method, PretrainResult with the loaded model and QoM, checkpoint dict minus state_dict)."""
    payload = read_checkpoint(path, kind="stage1")
    method = payload["model_args"].get("method", "cosmo")
    if method == "cpc":
        model: nn.Module = CPCModel(**payload["model_args"]["cpc"])
        load_state_strict(model, payload["state_dict"], str(path))
        meta = {k: v for k, v in payload.items() if k != "state_dict"}
    else:
        model, meta = load_pretrained(path)
    return method, pipeline.PretrainResult(model, meta["qom"], [], {}), meta


def load_method_classifier(path: PathLike) -> Tuple[nn.Module, Dict[str, Any]]:
    """Any method's classifier checkpoint -> (model in eval mode, checkpoint dict minus state_dict)."""
    payload = read_checkpoint(path, kind="classifier")
    args = payload["model_args"]
    model = build_baseline(args) if "architecture" in args else build_fusion_classifier(args)
    load_state_strict(model, payload["state_dict"], str(path))
    model.eval()
    return model, {k: v for k, v in payload.items() if k != "state_dict"}

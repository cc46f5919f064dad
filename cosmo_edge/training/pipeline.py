"""The Cosmo recipe end to end on prepared tensors: stage 1 -> QoM -> stage 2, and the baseline.

These functions hold no file I/O (see ``cosmo_edge.training.rundir`` for the run directory), so the
CLI, the demo and the accuracy benchmark all run exactly the same training code.
"""

import copy
import logging
import time
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

import torch
from torch import nn

from cosmo_edge.training.config import RunConfig
from cosmo_edge.training.data import ExperimentData
from cosmo_edge.training.qom import compute_qom, qom_weights_or_uniform
from cosmo_edge.training.stage1 import extract_features, train_stage1
from cosmo_edge.training.stage2 import train_fusion_classifier
from cosmo_edge.training.supervised import train_supervised
from models.classifier import FusionClassifier
from models.cosmo import CosmoPretrainModel
from models.encoders import build_encoder

logger = logging.getLogger(__name__)


@dataclass
class PretrainResult:
    """A trained stage-1 model, its QoM record and how long each part took."""

    model: CosmoPretrainModel
    qom: Dict
    history: List[Dict]
    seconds: Dict[str, float]


def build_encoders_from_config(config: RunConfig, input_shapes: Dict[str, tuple]) -> nn.ModuleDict:
    """One encoder per configured modality, with its options from ``config.model.encoders``."""
    return nn.ModuleDict(
        {
            m: build_encoder(m, tuple(input_shapes[m]), **dict(config.model.encoders.get(m, {})))
            for m in config.data.modalities
        }
    )


def make_classifier(
    config: RunConfig, encoders: nn.ModuleDict, num_classes: int, qom_weights: List[float], qom_lambda: float
) -> FusionClassifier:
    """A FusionClassifier with the configured head and fusion operator around ``encoders``."""
    return FusionClassifier(
        encoders,
        num_classes=num_classes,
        qom_weights=qom_weights,
        qom_lambda=qom_lambda,
        fusion_op=config.model.fusion_op,
        hidden_dim=config.model.hidden_dim,
        dropout=config.model.dropout,
        score_scale=config.model.score_scale,
    )


def pretrain(config: RunConfig, data: ExperimentData, progress: bool = True) -> PretrainResult:
    """Stage 1 on the unlabeled split (labels never read), then QoM on its features."""
    torch.manual_seed(config.seed)
    encoders = build_encoders_from_config(config, data.input_shapes)
    model = CosmoPretrainModel(encoders, config.stage1.proj_dim, config.stage1.head_hidden)
    unlabeled_inputs = data.splits["unlabeled"][0]
    started = time.perf_counter()
    history = train_stage1(model, unlabeled_inputs, config.stage1, config.seed, progress)
    stage1_s = time.perf_counter() - started
    started = time.perf_counter()
    features = extract_features(model, unlabeled_inputs, kind=config.qom.features)
    qom = compute_qom(
        features, data.num_classes, config.qom, seed=config.seed, groups=data.subjects["unlabeled"]
    )
    qom_s = time.perf_counter() - started
    logger.info("stage 1 %.1f s, QoM %.1f s, weights %s", stage1_s, qom_s, qom["weights"])
    return PretrainResult(model, qom, history, {"stage1": stage1_s, "qom": qom_s})


def eval_sets(data: ExperimentData) -> Dict:
    """The splits logged during stage 2: validation (for selection) and test (never for selection)."""
    return {name: data.splits[name] for name in ("validation", "test") if len(data.splits[name][1])}


def finetune(
    config: RunConfig,
    data: ExperimentData,
    encoders: nn.ModuleDict,
    qom: Optional[Dict],
    progress: bool = True,
) -> Tuple[FusionClassifier, Dict]:
    """Stage 2: a new attention classifier around (a copy of) the stage-1 encoders, iterative fusion."""
    torch.manual_seed(config.seed + 1)
    weights = qom_weights_or_uniform(qom, list(encoders.keys()))
    model = make_classifier(
        config, copy.deepcopy(encoders), data.num_classes, weights, config.model.qom_lambda
    )
    result = train_fusion_classifier(
        model, data.splits["labeled"], config.stage2, config.seed, eval_sets(data), progress
    )
    return model, result


def supervised(
    config: RunConfig, data: ExperimentData, progress: bool = True
) -> Tuple[FusionClassifier, Dict]:
    """The same encoders and classifier from random initialisation, trained jointly on the labels.

    No QoM exists without stage 1, so the prior is uniform; ``config.model.qom_lambda`` still sets how
    much of the fusion weight is fixed (the same blend as Cosmo's classifier).
    """
    torch.manual_seed(config.seed + 2)
    encoders = build_encoders_from_config(config, data.input_shapes)
    weights = qom_weights_or_uniform(None, list(encoders.keys()))
    model = make_classifier(config, encoders, data.num_classes, weights, config.model.qom_lambda)
    result = train_supervised(
        model, data.splits["labeled"], config.supervised, config.seed, eval_sets(data), progress
    )
    return model, result

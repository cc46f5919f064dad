"""Stage 2: iterative fusion learning on the few labels (cosmo-method.md section 6.2).

Epoch e (1-based) lies in block b = (e - 1) // t_iter. With ``first_phase = "encoders"`` even blocks
train the encoders and odd blocks the classifier (attention + head). The other part is *really*
frozen: ``requires_grad = False``, eval mode (BatchNorm statistics and dropout fixed), and its own SGD
optimiser is not stepped. While the encoders are frozen and no augmentation is on, their features
are computed once per block and reused.

``alternation = "joint"`` trains both parts on every step (the supervised baseline and AttnSense);
``"reference"`` reproduces the reference code's mode-only toggle (both parts always step), for
comparison runs only. Validation and test metrics are logged every ``eval_every`` epochs and at the
last epoch; test metrics are never used to pick anything.
"""

import logging
import time
from dataclasses import dataclass
from typing import Dict, Iterable, List, Optional, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from cosmo_edge.training.augment import augment_batch
from cosmo_edge.training.batching import batch_indices
from cosmo_edge.training.config import AugmentConfig, Stage2Config
from cosmo_edge.training.metrics import evaluate
from cosmo_edge.training.seeding import torch_generator
from cosmo_edge.training.stage1 import make_sgd, multistep_lr, set_lr
from models.classifier import FusionClassifier

logger = logging.getLogger(__name__)

ALTERNATIONS = ("iterative", "joint", "reference")
Split = Tuple[Dict[str, torch.Tensor], torch.Tensor]


def phase_for_epoch(
    epoch: int, t_iter: int, first_phase: str = "encoders", alternation: str = "iterative"
) -> str:
    """Which part trains in 1-based ``epoch``: "encoders", "classifier" or "joint"."""
    if alternation == "joint":
        return "joint"
    if alternation not in ALTERNATIONS:
        raise ValueError(f"alternation must be one of {ALTERNATIONS}, got {alternation!r}")
    if first_phase not in ("encoders", "classifier"):
        raise ValueError(f"first_phase must be 'encoders' or 'classifier', got {first_phase!r}")
    block = (epoch - 1) // max(1, t_iter)
    phases = ("encoders", "classifier") if first_phase == "encoders" else ("classifier", "encoders")
    return phases[block % 2]


def set_trainable(modules: Iterable[nn.Module], trainable: bool, toggle_grad: bool = True) -> None:
    """Train/eval mode and (unless ``toggle_grad`` is False) requires_grad for every parameter."""
    for module in modules:
        module.train(trainable)
        if toggle_grad:
            for parameter in module.parameters():
                parameter.requires_grad_(trainable)


def apply_phase(model: FusionClassifier, phase: str, alternation: str) -> Tuple[bool, bool]:
    """Freeze/unfreeze the two parts for ``phase``; return (step encoders?, step classifier?)."""
    encoders, classifier = [model.encoders], model.classifier_modules()
    if phase == "joint":
        set_trainable(encoders + classifier, True)
        return True, True
    train_encoders = phase == "encoders"
    set_trainable(encoders, train_encoders, toggle_grad=alternation != "reference")
    set_trainable(classifier, not train_encoders, toggle_grad=alternation != "reference")
    if alternation == "reference":  # the reference's bug: modes toggle, but both parts keep learning
        for parameter in model.parameters():
            parameter.requires_grad_(True)
        return True, True
    return train_encoders, not train_encoders


def freeze_batchnorm_statistics(module: nn.Module) -> None:
    """Put every BatchNorm layer of ``module`` in eval mode: running statistics stay as they are.

    With a few dozen labels, re-estimating the encoders' BatchNorm statistics on the labeled batches
    replaces the statistics stage 1 measured on hundreds of unlabeled windows; their affine weights
    still learn.
    """
    for layer in module.modules():
        if isinstance(layer, nn.modules.batchnorm._BatchNorm):
            layer.eval()


@torch.no_grad()
def encode_all(
    model: FusionClassifier, inputs: Dict[str, torch.Tensor], batch_size: int = 256
) -> List[torch.Tensor]:
    """Encoder features of every sample, in the encoders' current (eval) mode."""
    n = next(iter(inputs.values())).shape[0]
    parts: List[List[torch.Tensor]] = [[] for _ in model.modalities]
    for start in range(0, n, batch_size):
        features = model.encode({m: x[start : start + batch_size] for m, x in inputs.items()})
        for j, f in enumerate(features):
            parts[j].append(f)
    return [torch.cat(p) for p in parts]


@dataclass
class EpochOptimizers:
    """The two stage-2 optimizers and which of them steps in the current phase."""

    encoders: torch.optim.Optimizer
    classifier: torch.optim.Optimizer
    step_encoders: bool
    step_classifier: bool


def train_epoch(
    model: FusionClassifier,
    inputs: Dict[str, torch.Tensor],
    labels: torch.Tensor,
    batches: Iterable[np.ndarray],
    optimizers: EpochOptimizers,
    cached: Optional[List[torch.Tensor]] = None,
    present: Optional[torch.Tensor] = None,
    augmentation: Optional[Tuple[AugmentConfig, torch.Generator]] = None,
) -> List[float]:
    """One pass of cross-entropy SGD over ``batches``; returns the loss of every batch.

    The one epoch loop of stage 2, the supervised baselines and on-device rounds. ``cached``: frozen
    encoder features (classifier-only phases skip the encoders); ``present``: (N, M) modality masks
    of live windows; ``augmentation``: (config, generator) for the training-time augmentations.
    """
    losses = []
    for index in batches:
        mask = None if present is None else present[index]
        if cached is not None:
            logits = model.classify([f[index] for f in cached], mask)
        else:
            batch = {m: x[index] for m, x in inputs.items()}
            if augmentation is not None:
                batch = augment_batch(batch, augmentation[0], augmentation[1])
            logits = model(batch, mask) if mask is not None else model(batch)
        loss = F.cross_entropy(logits, labels[index])
        optimizers.encoders.zero_grad(set_to_none=True)
        optimizers.classifier.zero_grad(set_to_none=True)
        loss.backward()
        if optimizers.step_encoders:
            optimizers.encoders.step()
        if optimizers.step_classifier:
            optimizers.classifier.step()
        losses.append(float(loss.detach()))
    return losses


def _evaluate_splits(model: FusionClassifier, eval_sets: Dict[str, Split]) -> Dict[str, Dict]:
    return {name: evaluate(model, x, y, model.num_classes) for name, (x, y) in eval_sets.items()}


def train_fusion_classifier(
    model: FusionClassifier,
    train: Split,
    config: Stage2Config,
    seed: int,
    eval_sets: Optional[Dict[str, Split]] = None,
    progress: bool = True,
    desc: str = "stage 2",
) -> Dict:
    """Train ``model`` on the labeled ``train`` split; return history and last / val-selected metrics.

    Result keys: ``history`` (per evaluated epoch), ``last`` (metrics per split at the last epoch),
    ``val_selected`` (epoch with the best validation accuracy, latest on ties, and its metrics; only
    when a "validation" split is given), ``seconds``.
    """
    inputs, labels = train
    eval_sets = eval_sets or {}
    n = len(labels)
    rng = np.random.default_rng(seed)
    generator = torch_generator(seed)
    opt_enc = make_sgd(model.encoder_parameters(), config.lr_encoders, config.momentum, config.weight_decay)
    opt_cls = make_sgd(
        model.classifier_parameters(), config.lr_classifier, config.momentum, config.weight_decay
    )
    history: List[Dict] = []
    best: Optional[Dict] = None
    cached: Optional[List[torch.Tensor]] = None
    started = time.perf_counter()
    bar = tqdm(range(1, config.epochs + 1), desc=desc, disable=not progress, leave=False)
    for epoch in bar:
        phase = phase_for_epoch(epoch, config.t_iter, config.first_phase, config.alternation)
        step_enc, step_cls = apply_phase(model, phase, config.alternation)
        if config.encoder_bn == "frozen":
            freeze_batchnorm_statistics(model.encoders)
        set_lr(opt_enc, multistep_lr(config.lr_encoders, config.lr_milestones, config.lr_gamma, epoch))
        set_lr(opt_cls, multistep_lr(config.lr_classifier, config.lr_milestones, config.lr_gamma, epoch))
        use_cache = phase == "classifier" and config.alternation == "iterative" and not config.augment.enabled
        if not use_cache:
            cached = None
        elif cached is None:
            cached = encode_all(model, inputs)
        optimizers = EpochOptimizers(opt_enc, opt_cls, step_enc, step_cls)
        batches = batch_indices(n, min(config.batch_size, n), rng)
        augmentation = (config.augment, generator)
        losses = train_epoch(model, inputs, labels, batches, optimizers, cached, None, augmentation)
        if eval_sets and (epoch % max(1, config.eval_every) == 0 or epoch == config.epochs):
            row = {"epoch": epoch, "phase": phase, "train_loss": float(np.mean(losses))}
            metrics = _evaluate_splits(model, eval_sets)
            row.update(
                {f"{name}_{key}": m[key] for name, m in metrics.items() for key in ("accuracy", "macro_f1")}
            )
            history.append(row)
            if "validation" in metrics and (
                best is None or metrics["validation"]["accuracy"] >= best["metrics"]["validation"]["accuracy"]
            ):
                best = {"epoch": epoch, "metrics": metrics}
            bar.set_postfix(loss=f"{row['train_loss']:.3f}", val=f"{row.get('validation_accuracy', 0):.3f}")
    set_trainable([model], True)
    model.eval()
    result = {
        "history": history,
        "last": _evaluate_splits(model, eval_sets),
        "seconds": time.perf_counter() - started,
    }
    if best is not None:
        result["val_selected"] = best
    return result

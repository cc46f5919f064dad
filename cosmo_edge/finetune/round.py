"""One fine-tuning round: Cosmo stage 2 from the active model on the stored labeled windows.

``run_round(active_path, store_path, out_path, settings)``:

1. loads the active checkpoint (architecture, weights, normalisation, QoM weights: the fusion's QoM
   prior is part of ``model_args`` and is kept as trained in stage 1);
2. reads the labeled windows stored up to now (the newest ``max_windows``), normalises them with
   the checkpoint's statistics and keeps their ``present`` masks (absent modalities are masked out
   of the fusion, never fed as zeros-as-data);
3. splits them (``promotion.holdout_split``, seeded by the newest row id, so a round is
   reproducible), trains a *copy* of the model with iterative fusion learning (encoder and
   classifier blocks of ``t_iter`` epochs alternate; the frozen part really frozen, see
   ``cosmo_edge.training.stage2``; classifier first by default, since the model is trained already
   and its head is what mislabels the user's activities, docs/learning.md), evaluates the active
   model and the candidate on the held-out windows and applies ``promotion.decide``;
4. writes the candidate checkpoint to ``out_path`` (whether or not it is promoted; the caller
   registers it only when promoted) and returns a JSON-able result.

The active model object is never trained: the copy is. Python 3.8, CPU; ``threads`` bounds torch.
"""

import copy
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple, Union

import numpy as np
import torch

from cosmo_edge.finetune.promotion import DEFAULT_F1_MARGIN, decide, holdout_split
from cosmo_edge.preprocess import Normalization

logger = logging.getLogger(__name__)

PathLike = Union[str, Path]


class RoundSkipped(RuntimeError):
    """Too few usable labeled windows for a round (the message says why)."""


@dataclass
class RoundSettings:
    """How one round trains and judges (units in names; defaults match ``FinetuneSettings``)."""

    epochs: int = 20
    t_iter_epochs: int = 5
    first_phase: str = "classifier"  # from a trained model: fit the head to its features first
    alternation: str = "iterative"  # "joint" trains both parts every step (the supervised comparison)
    batch_size: int = 16
    freeze_encoder_bn: bool = False  # True: encoder BatchNorm running statistics stay as trained
    lr_encoders: float = 0.001
    lr_classifier: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 1e-4
    holdout_fraction: float = 0.25
    f1_margin: float = DEFAULT_F1_MARGIN
    max_windows: int = 400
    threads: int = 1
    seed: Optional[int] = None  # None: the newest labeled row id


def load_labeled(
    store_path: PathLike, label_names: List[str], modalities: List[str], max_windows: int
) -> Tuple[Dict[str, np.ndarray], np.ndarray, np.ndarray, List[str], int]:
    """(inputs, labels, present (N, M), event ids, newest row id) of the usable stored windows."""
    from cosmo_edge.labels import LabelStore, stack_windows

    with LabelStore(store_path, readonly=True) as store:
        last_row = store.last_row_id()
        first_row = max(0, last_row - int(max_windows))
        windows = [w for w in store.iter_windows(first_row, modalities) if w.row_id <= last_row]
    names = set(label_names)
    kept = [w for w in windows if w.activity in names and all(m in w.inputs for m in modalities)]
    inputs, labels, present = stack_windows(kept, label_names, modalities)
    return inputs, labels, present, [w.message_id for w in kept], last_row


def _tensors(
    inputs: Dict[str, np.ndarray], normalization: Optional[Dict[str, Any]], index: np.ndarray
) -> Dict[str, torch.Tensor]:
    subset = {m: x[index] for m, x in inputs.items()}
    if normalization is not None:
        subset = Normalization.from_dict(normalization).apply(subset)
    return {m: torch.as_tensor(np.asarray(x, dtype=np.float32)) for m, x in subset.items()}


def train_iterative(
    model: Any, inputs: Dict[str, torch.Tensor], labels: torch.Tensor, present: torch.Tensor, s: RoundSettings
) -> List[float]:
    """Stage-2 training of ``model`` in place with ``present`` masks; returns the mean loss per epoch."""
    from cosmo_edge.training.batching import batch_indices
    from cosmo_edge.training.stage1 import make_sgd, set_lr
    from cosmo_edge.training.stage2 import (
        EpochOptimizers,
        apply_phase,
        encode_all,
        phase_for_epoch,
        train_epoch,
    )

    n = int(labels.shape[0])
    seed = 0 if s.seed is None else int(s.seed)
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    opt_enc = make_sgd(model.encoder_parameters(), s.lr_encoders, s.momentum, s.weight_decay)
    opt_cls = make_sgd(model.classifier_parameters(), s.lr_classifier, s.momentum, s.weight_decay)
    set_lr(opt_enc, s.lr_encoders)
    set_lr(opt_cls, s.lr_classifier)
    losses: List[float] = []
    cached: Optional[List[torch.Tensor]] = None
    for epoch in range(1, s.epochs + 1):
        phase = phase_for_epoch(epoch, s.t_iter_epochs, s.first_phase, s.alternation)
        step_enc, step_cls = apply_phase(model, phase, s.alternation)
        if s.freeze_encoder_bn:  # a few labeled batches must not replace stage 1's BatchNorm statistics
            for layer in model.encoders.modules():
                if isinstance(layer, torch.nn.modules.batchnorm._BatchNorm):
                    layer.eval()
        if phase != "classifier":
            cached = None
        elif cached is None:  # frozen encoders in eval mode: features fixed for the whole block
            cached = encode_all(model, inputs)
        optimizers = EpochOptimizers(opt_enc, opt_cls, step_enc, step_cls)
        batches = (torch.as_tensor(index) for index in batch_indices(n, min(s.batch_size, n), rng))
        epoch_losses = train_epoch(model, inputs, labels, batches, optimizers, cached, present)
        losses.append(float(np.mean(epoch_losses)))
    for parameter in model.parameters():
        parameter.requires_grad_(True)
    model.eval()
    return losses


def evaluate_model(
    model: Any, inputs: Dict[str, torch.Tensor], labels: np.ndarray, present: torch.Tensor
) -> Dict[str, Any]:
    """Accuracy, macro-F1 and confusion of ``model`` on one split (eval mode, with ``present``)."""
    from cosmo_edge.training.metrics import classification_metrics, predict

    predictions = predict(model, inputs, present=present)
    return classification_metrics(np.asarray(labels), predictions, model.num_classes)


def run_round(
    active_path: PathLike, store_path: PathLike, out_path: PathLike, settings: Optional[RoundSettings] = None
) -> Dict[str, Any]:
    """One round (see the module docstring); raises RoundSkipped when there is too little to train on."""
    import models.radar  # noqa: F401  (registers the radar encoder a checkpoint may name)
    from cosmo_edge.training.checkpoint import load_classifier, save_checkpoint

    s = settings or RoundSettings()
    torch.set_num_threads(max(1, int(s.threads)))
    started = time.perf_counter()
    active, meta = load_classifier(active_path)
    modalities = list(meta["modalities"])
    label_names = [str(n) for n in meta["label_names"]]
    inputs, labels, present, events, last_row = load_labeled(
        store_path, label_names, modalities, s.max_windows
    )
    if s.seed is None:
        s = RoundSettings(**dict(asdict(s), seed=int(last_row)))
    train_idx, held_idx = holdout_split(labels, events, s.holdout_fraction, int(s.seed or 0))
    if len(train_idx) < 2 or len(held_idx) < 1:
        raise RoundSkipped(
            f"{len(labels)} usable labeled windows: {len(train_idx)} to train, {len(held_idx)} held out"
        )
    norm = meta.get("normalization")
    x_train, x_held = _tensors(inputs, norm, train_idx), _tensors(inputs, norm, held_idx)
    p_train, p_held = torch.as_tensor(present[train_idx]), torch.as_tensor(present[held_idx])
    loaded_s = time.perf_counter() - started
    candidate = copy.deepcopy(active)
    losses = train_iterative(candidate, x_train, torch.as_tensor(labels[train_idx]), p_train, s)
    trained_s = time.perf_counter() - started - loaded_s
    before = evaluate_model(active, x_held, labels[held_idx], p_held)
    after = evaluate_model(candidate, x_held, labels[held_idx], p_held)
    decision = decide(after, before, s.f1_margin, len(held_idx))
    counts = {label_names[k]: int(np.sum(labels[train_idx] == k)) for k in np.unique(labels)}
    result: Dict[str, Any] = {
        "promote": decision.promote,
        "reason": decision.reason,
        "holdout": {"active": before, "candidate": after, "windows": int(len(held_idx))},
        "train_windows": int(len(train_idx)),
        "train_per_class": counts,
        "last_row_id": int(last_row),
        "losses": [round(v, 5) for v in losses],
        "settings": asdict(s),
        "seconds": {"load": round(loaded_s, 3), "train": round(trained_s, 3)},
    }
    config = dict(meta.get("config") or {}, finetune=asdict(s))
    save_checkpoint(
        out_path,
        "classifier",
        candidate,
        candidate.model_args(),
        {m: tuple(meta["modalities"][m]) for m in modalities},
        label_names,
        norm,
        meta.get("qom"),
        {"finetune": {k: v for k, v in result.items() if k != "losses"}},
        config,
    )
    result["seconds"]["total"] = round(time.perf_counter() - started, 3)
    logger.info(
        "round on %d windows (%d held out) in %.1f s: %s",
        len(labels),
        len(held_idx),
        result["seconds"]["total"],
        decision.reason,
    )
    return result

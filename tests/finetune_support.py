"""Shared pieces of the fine-tuning tests: a small IMU checkpoint and a label store of separable windows."""

from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
from torch import nn

from cosmo_edge.datasets import make_synthetic_dataset
from cosmo_edge.labels import LabelMessage, LabelStore
from cosmo_edge.preprocess import Normalization
from cosmo_edge.training.checkpoint import save_checkpoint
from cosmo_edge.windows import Window
from models.classifier import FusionClassifier
from models.encoders import build_encoder

LABELS = ["c0", "c1", "c2"]
MODALITIES = ("imu", "skeleton")
SHAPES = {"imu": (120, 6), "skeleton": (40, 20, 3)}


def dataset(seed: int = 0, trials: int = 4) -> object:
    """Class-distinguishable synthetic windows (3 classes, 4 subjects)."""
    return make_synthetic_dataset(
        num_classes=len(LABELS),
        num_subjects=4,
        trials_per_subject_class=trials,
        modalities=MODALITIES,
        seed=seed,
    )


def save_model(path: Path, seed: int = 0, normalization: Optional[Dict] = None) -> Path:
    """An untrained (random head) imu+skeleton classifier checkpoint: a model that knows nothing yet."""
    torch.manual_seed(seed)
    encoders = nn.ModuleDict({m: build_encoder(m, SHAPES[m]) for m in MODALITIES})
    model = FusionClassifier(encoders, len(LABELS), [0.5, 0.5]).eval()
    if normalization is None:
        norm = Normalization()
        norm.fit(dataset().inputs)
        normalization = norm.to_dict()
    return save_checkpoint(
        path, "classifier", model, model.model_args(), SHAPES, LABELS, normalization, None, {}, {}
    )


def windows_of(ds: object, index: Sequence[int], first_id: int = 0) -> List[Window]:
    """``Window`` records of rows ``index`` (ids from ``first_id``), all modalities present."""
    out = []
    for k, row in enumerate(index):
        inputs = {m: ds.inputs[m][row] for m in MODALITIES}
        end_ns = 10**12 + (first_id + k) * 500_000_000
        out.append(
            Window(
                first_id + k,
                end_ns - 2 * 10**9,
                end_ns,
                inputs,
                {m: True for m in MODALITIES},
                {m: 100 for m in MODALITIES},
                {m: "ok" for m in MODALITIES},
            )
        )
    return out


def fill_store(store: LabelStore, per_class: int, seed: int = 0, events_per_class: int = 2) -> int:
    """Store ``per_class`` windows of every class as ``events_per_class`` label messages; returns count."""
    ds = dataset(seed)
    rng = np.random.default_rng(seed)
    next_id = store.last_row_id() * 10 + 1000 * seed
    stored = 0
    for label, name in enumerate(LABELS):
        rows = rng.permutation(np.flatnonzero(ds.labels == label))[:per_class]
        for part, chunk in enumerate(np.array_split(rows, events_per_class)):
            if not len(chunk):
                continue
            message = LabelMessage(f"s{seed}-{name}-{part}-{next_id}", name, "test-session")
            store.add_label(message, windows_of(ds, chunk, next_id))
            next_id += len(chunk)
            stored += len(chunk)
    return stored

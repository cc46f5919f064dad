"""Classification metrics and batched evaluation: accuracy, macro-F1 and the confusion matrix.

Macro-F1 averages the per-class F1 over the classes present in the labels (on the UTD-MHAD test split
that is all K classes); a present class that is never predicted correctly counts as F1 = 0.
"""

import logging
from typing import Dict, List, Optional

import numpy as np
import torch
from torch import nn

logger = logging.getLogger(__name__)


def confusion_matrix(labels: np.ndarray, predictions: np.ndarray, num_classes: int) -> np.ndarray:
    """(K, K) int64 counts; row = true class, column = predicted class."""
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (np.asarray(labels, dtype=np.int64), np.asarray(predictions, dtype=np.int64)), 1)
    return matrix


def macro_f1(matrix: np.ndarray) -> float:
    """Mean F1 over the classes that occur in the labels (rows with any count)."""
    true_positive = np.diag(matrix).astype(np.float64)
    predicted = matrix.sum(axis=0).astype(np.float64)
    actual = matrix.sum(axis=1).astype(np.float64)
    denominator = predicted + actual
    f1 = np.divide(2.0 * true_positive, denominator, out=np.zeros_like(true_positive), where=denominator > 0)
    present = actual > 0
    return float(f1[present].mean()) if present.any() else 0.0


def classification_metrics(labels: np.ndarray, predictions: np.ndarray, num_classes: int) -> Dict:
    """{"accuracy", "macro_f1", "confusion"} (confusion as nested lists, JSON-able)."""
    matrix = confusion_matrix(labels, predictions, num_classes)
    accuracy = float(np.trace(matrix) / max(1, matrix.sum()))
    return {"accuracy": accuracy, "macro_f1": macro_f1(matrix), "confusion": matrix.tolist()}


@torch.no_grad()
def predict(
    model: nn.Module,
    inputs: Dict[str, torch.Tensor],
    batch_size: int = 256,
    present: Optional[torch.Tensor] = None,
) -> np.ndarray:
    """Class predictions (N,) of ``model`` in eval mode; restores the previous train/eval mode."""
    was_training = model.training
    model.eval()
    n = next(iter(inputs.values())).shape[0]
    chunks: List[np.ndarray] = []
    for start in range(0, n, batch_size):
        batch = {m: x[start : start + batch_size] for m, x in inputs.items()}
        mask = present[start : start + batch_size] if present is not None else None
        chunks.append(model(batch, mask).argmax(dim=1).cpu().numpy())
    model.train(was_training)
    return np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int64)


def evaluate(
    model: nn.Module, inputs: Dict[str, torch.Tensor], labels: torch.Tensor, num_classes: int
) -> Dict:
    """Accuracy, macro-F1 and confusion matrix of ``model`` on one split."""
    predictions = predict(model, inputs)
    return classification_metrics(labels.cpu().numpy(), predictions, num_classes)

"""The held-out split of the labeled windows and the promotion rule.

Split (``holdout_split``): per class, a fixed share of the windows is held out for judging, chosen
by a seeded permutation of the store's row ids so the split of a round is reproducible; every class
with at least two windows keeps at least one for training and holds at least one out. Windows of the
same label event overlap in time (hop < window), so the split is by label *event* where a class has
more than one event: held-out windows then never share samples with training windows.

Rule (``decide``): promote the candidate only if, on the held-out windows,

- its accuracy is >= the active model's, and
- its macro-F1 is not lower than the active model's by more than ``f1_margin`` (default 0.02).

Accuracy may not drop at all; macro-F1 may drop a little at equal accuracy because one window
flipping between two small classes moves macro-F1 by more than it moves accuracy. With no held-out
window the candidate is rejected (nothing shows it is not worse).
"""

import logging
from dataclasses import dataclass
from typing import Dict, Sequence, Tuple

import numpy as np

logger = logging.getLogger(__name__)

DEFAULT_F1_MARGIN = 0.02


@dataclass
class Decision:
    """The outcome of one comparison."""

    promote: bool
    reason: str
    candidate: Dict[str, float]
    active: Dict[str, float]


def holdout_split(
    labels: np.ndarray, groups: Sequence[str], fraction: float, seed: int
) -> Tuple[np.ndarray, np.ndarray]:
    """(train index, held-out index) into ``labels``; see the module docstring.

    ``groups`` names the label event of each window (windows of one event stay together when the
    class has more than one event).
    """
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"fraction must be in (0, 1), got {fraction}")
    labels = np.asarray(labels)
    groups_arr = np.asarray([str(g) for g in groups])
    rng = np.random.default_rng(seed)
    train, held = [], []
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        if len(members) < 2:
            train.append(members)
            continue
        events = np.unique(groups_arr[members])
        if len(events) >= 2:
            order = rng.permutation(events)
            n_out = min(len(events) - 1, max(1, int(round(fraction * len(events)))))
            out_mask = np.isin(groups_arr[members], order[:n_out])
        else:
            order = rng.permutation(len(members))
            n_out = min(len(members) - 1, max(1, int(round(fraction * len(members)))))
            out_mask = np.zeros(len(members), dtype=bool)
            out_mask[order[:n_out]] = True
        held.append(members[out_mask])
        train.append(members[~out_mask])
    join = lambda parts: np.sort(np.concatenate(parts)).astype(np.int64) if parts else np.zeros(0, np.int64)  # noqa: E731
    return join(train), join(held)


def decide(
    candidate: Dict[str, float],
    active: Dict[str, float],
    f1_margin: float = DEFAULT_F1_MARGIN,
    n_holdout: int = 1,
) -> Decision:
    """Apply the promotion rule to two ``{"accuracy", "macro_f1"}`` dicts measured on the same windows."""
    cand = {"accuracy": float(candidate["accuracy"]), "macro_f1": float(candidate["macro_f1"])}
    act = {"accuracy": float(active["accuracy"]), "macro_f1": float(active["macro_f1"])}
    if n_holdout < 1:
        return Decision(False, "no held-out windows", cand, act)
    if cand["accuracy"] < act["accuracy"]:
        return Decision(False, f"accuracy {cand['accuracy']:.3f} < active {act['accuracy']:.3f}", cand, act)
    if cand["macro_f1"] < act["macro_f1"] - f1_margin:
        return Decision(
            False,
            f"macro-F1 {cand['macro_f1']:.3f} below active {act['macro_f1']:.3f} by more than {f1_margin}",
            cand,
            act,
        )
    return Decision(
        True,
        f"accuracy {cand['accuracy']:.3f} >= {act['accuracy']:.3f}, macro-F1 {cand['macro_f1']:.3f} "
        f"vs {act['macro_f1']:.3f} (margin {f1_margin})",
        cand,
        act,
    )

"""Which windows the fine-tuning benchmark labels, and how they reach the round (``bench.finetune``).

``labels_per_class`` and ``draw_labeled`` turn a label rate into a seeded, stratified draw;
``fill_store`` writes the drawn windows into a real label store as the daemon does; and
``round_training_set`` repeats the round's own store read and held-out split, so the baselines train
on exactly the windows the round's training step sees.
"""

import math
from pathlib import Path
from typing import Any, Dict, List, Sequence, Tuple

import numpy as np


def rate_key(rate: float) -> str:
    """``0.01`` -> ``"1%"`` (the keys of ``PAPER_TABLE3``)."""
    return f"{rate * 100:g}%"


def labels_per_class(class_counts: Dict[int, int], rate: float, minimum: int = 1) -> Dict[int, int]:
    """Labeled windows per class: ``rate x count`` rounded half up, at least ``minimum``, at most count."""
    if not 0 < rate <= 1:
        raise ValueError(f"label rate must be in (0, 1], got {rate}")
    if minimum < 1:
        raise ValueError(f"minimum must be at least 1, got {minimum}")
    out = {}
    for label, count in class_counts.items():
        if count < 1:
            continue
        out[label] = min(int(count), max(int(minimum), int(math.floor(rate * count + 0.5))))
    return out


def draw_labeled(
    labels: np.ndarray, pool: np.ndarray, rate: float, seed: int, minimum: int = 1
) -> np.ndarray:
    """Indices into ``labels``: ``labels_per_class`` windows of every class present in ``pool``."""
    pool_labels = labels[pool]
    classes, counts = np.unique(pool_labels, return_counts=True)
    wanted = labels_per_class({int(c): int(n) for c, n in zip(classes, counts)}, rate, minimum)
    rng = np.random.default_rng(seed)
    parts = [rng.permutation(pool[pool_labels == c])[:k] for c, k in wanted.items()]
    return np.sort(np.concatenate(parts))


def fill_store(state_dir: Path, ds: Any, index: np.ndarray, modalities: Sequence[str]) -> Path:
    """A label store in ``state_dir`` holding the windows ``index`` of ``ds``, one label event each."""
    from cosmo_edge.labels import LabelMessage, LabelStore
    from cosmo_edge.windows import Window

    window_ns = 2 * 10**9
    with LabelStore.in_state_dir(state_dir) as store:
        for row in index:
            end_ns = 10**12 + int(row) * window_ns
            ok = {m: True for m in modalities}
            inputs = {m: ds.inputs[m][row] for m in modalities}
            window = Window(
                int(row), end_ns - window_ns, end_ns, inputs, ok, {m: 1 for m in ok}, {m: "ok" for m in ok}
            )
            activity = str(ds.label_names[int(ds.labels[row])])
            store.add_label(LabelMessage(f"bench-{row}", activity, "bench"), [window])
        return Path(store.path)


def round_training_set(
    store_path: Path, label_names: List[str], modalities: List[str], settings: Any
) -> Tuple[Dict[str, np.ndarray], np.ndarray, np.ndarray, int]:
    """(inputs, labels, present, held-out count): the windows a round with ``settings`` trains on.

    The round's own store read and held-out split (``settings.seed`` must be set), so the baselines
    can train on exactly the windows the round's training step sees.
    """
    from cosmo_edge.finetune.promotion import holdout_split
    from cosmo_edge.finetune.round import load_labeled

    if settings.seed is None:
        raise ValueError("round_training_set needs a fixed seed (the round would use the newest row id)")
    inputs, labels, present, events, _ = load_labeled(
        store_path, label_names, modalities, settings.max_windows
    )
    train, held = holdout_split(labels, events, settings.holdout_fraction, int(settings.seed))
    return {m: x[train] for m, x in inputs.items()}, labels[train], present[train], int(held.size)

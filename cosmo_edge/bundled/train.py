"""Train the bundled model: simulator windows -> stage 1 -> QoM -> stage 2 (``cosmo_edge.training``).

Splits (sessions are the subjects): the last ``test_sessions`` sessions are held out for the test
accuracy; of the others' windows, ``validation_fraction`` per class is set aside, ``labeled_fraction``
of the rest carries labels for stage 2 and every remaining window is the unlabeled set of stage 1
(labels never read there). The z-score statistics are fitted on the training sessions only and
travel in the checkpoint, as for UTD-MHAD.

Schedules are short (``BUNDLED_OVERRIDES``) because the simulator's person is easy to tell apart and
the model must retrain in minutes on two CPU cores.
"""

import logging
import shutil
import time
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

import numpy as np

from cosmo_edge.bundled.simdata import SimDataConfig, make_sim_dataset
from cosmo_edge.datasets import MultimodalDataset
from cosmo_edge.preprocess import Normalization

logger = logging.getLogger(__name__)

BUNDLED_OVERRIDES: Dict[str, Any] = {
    "data.dataset": "simulator",
    "data.modalities": ["imu", "depth", "radar"],
    "stage1.epochs": 25,
    "stage1.batch_size": 32,
    "stage1.lr_milestones": [18],
    "stage2.epochs": 30,
    "stage2.batch_size": 16,
    "stage2.lr_milestones": [20],
    "stage2.eval_every": 5,
}


def split_sessions(
    ds: MultimodalDataset, test_sessions: int, labeled_fraction: float, validation_fraction: float, seed: int
) -> Dict[str, np.ndarray]:
    """Row indices of ``labeled``, ``unlabeled``, ``validation`` and ``test`` (see the module docstring)."""
    sessions = np.unique(ds.subjects)
    if test_sessions >= len(sessions):
        raise ValueError(f"{len(sessions)} sessions leave none for training after {test_sessions} test ones")
    test_ids = sessions[-test_sessions:] if test_sessions else np.array([], dtype=np.int64)
    is_test = np.isin(ds.subjects, test_ids)
    rng = np.random.default_rng(seed)
    parts: Dict[str, list] = {"labeled": [], "unlabeled": [], "validation": []}
    for label in range(ds.num_classes):
        members = rng.permutation(np.flatnonzero(~is_test & (ds.labels == label)))
        n_val = int(round(validation_fraction * len(members)))
        rest = members[n_val:]
        n_lab = max(1, int(round(labeled_fraction * len(rest))))
        parts["validation"].append(members[:n_val])
        parts["labeled"].append(rest[:n_lab])
        parts["unlabeled"].append(rest[n_lab:])
    out = {name: np.sort(np.concatenate(v)).astype(np.int64) for name, v in parts.items()}
    out["test"] = np.flatnonzero(is_test).astype(np.int64)
    return out


def experiment_data(ds: MultimodalDataset, indices: Dict[str, np.ndarray]) -> Any:
    """``training.data.ExperimentData`` for the given splits (normalisation fitted on training rows)."""
    from cosmo_edge.training.data import experiment_from_indices

    train_rows = np.concatenate([indices[k] for k in ("labeled", "unlabeled", "validation")])
    normalization = Normalization().fit({m: x[train_rows] for m, x in ds.inputs.items()})
    return experiment_from_indices(ds, indices, normalization)


def plain_versions(path: Path) -> None:
    """Rewrite the checkpoint's ``versions`` as plain strings so ``torch.load(weights_only=True)`` reads it.

    ``torch.__version__`` is a ``TorchVersion`` (a ``str`` subclass) that torch pickles as a class
    reference, which the weights-only loader refuses. The file is the one this run just wrote.
    """
    import torch

    payload = torch.load(str(path), map_location="cpu", weights_only=False)
    payload["versions"] = {str(k): str(v) for k, v in payload["versions"].items()}
    torch.save(payload, str(path))


def train_bundled(
    out_path: Path,
    run_dir: Path,
    data_config: Optional[SimDataConfig] = None,
    overrides: Optional[Dict[str, Any]] = None,
    test_sessions: int = 2,
    labeled_fraction: float = 0.3,
    validation_fraction: float = 0.15,
    progress: bool = True,
) -> Tuple[Path, Dict[str, Any]]:
    """Simulate, train, save the checkpoint to ``out_path`` (run files in ``run_dir``); return it + a card."""
    import models.radar  # noqa: F401  (registers the radar encoder)
    from cosmo_edge.training.config import RunConfig, apply_overrides
    from cosmo_edge.training.pipeline import finetune, pretrain
    from cosmo_edge.training.rundir import save_classifier, save_pretrain, start_run
    from cosmo_edge.training.seeding import seed_everything

    data_config = data_config or SimDataConfig()
    config = apply_overrides(RunConfig(), dict(BUNDLED_OVERRIDES, seed=data_config.seed, **(overrides or {})))
    config = apply_overrides(config, {"data.modalities": list(data_config.modalities)})
    seed_everything(config.seed)
    started = time.perf_counter()
    ds = make_sim_dataset(data_config)
    simulate_s = time.perf_counter() - started
    indices = split_sessions(ds, test_sessions, labeled_fraction, validation_fraction, config.seed)
    data = experiment_data(ds, indices)
    start_run(run_dir, config, data)
    started = time.perf_counter()
    pre = pretrain(config, data, progress)
    save_pretrain(run_dir, config, data, pre)
    model, result = finetune(config, data, pre.model.encoders, pre.qom, progress)
    checkpoint = save_classifier(run_dir, "stage2", config, data, model, pre.qom, result)
    train_s = time.perf_counter() - started
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(checkpoint, out_path)
    plain_versions(out_path)
    last = result["last"]
    card = {
        "model": out_path.name,
        "bytes": out_path.stat().st_size,
        "labels": list(ds.label_names),
        "modalities": list(data.modalities),
        "windows": {name: int(len(rows)) for name, rows in indices.items()},
        "sessions": data_config.sessions,
        "test_sessions": test_sessions,
        "test_accuracy": last.get("test", {}).get("accuracy"),
        "test_macro_f1": last.get("test", {}).get("macro_f1"),
        "validation_accuracy": last.get("validation", {}).get("accuracy"),
        "qom_weights": pre.qom.get("weights"),
        "seconds": {"simulate": round(simulate_s, 1), "train": round(train_s, 1)},
        "data_config": dict(vars(data_config)),
        "overrides": dict(BUNDLED_OVERRIDES, **(overrides or {})),
    }
    logger.info("bundled model %s: test accuracy %s", out_path, card["test_accuracy"])
    return out_path, card

"""Fine-tuning cost: one Cosmo on-device round beside DeepSense- and AttnSense-style training.

The data are simulator windows (``cosmo_edge.bundled.simdata``: IMU, depth and radar through the
daemon's own channel and window code). The last simulated session is the test set; the others are
the pool. At each label rate (1 % and 2 % of the pool) ``draw_labeled`` takes, per class,
``labels_per_class`` windows (the rate times the class's pool count, rounded half up, at least
``min_labels_per_class``, 2 by default: the round holds one window of such a class out to judge its
candidate, and with nothing held out it skips). The drawn windows go into a real label store, one
label event each, as the daemon writes them. Then, on the same windows, same epochs and batch size:

- ``cosmo``: the daemon's whole round (``cosmo_edge.finetune.round.run_round``: store read, held-out
  split, iterative fusion learning with encoder and classifier blocks alternating, classifier first,
  judging, candidate checkpoint) with the daemon's round settings. It starts from a model that is
  poor on part of the classes (``cosmo_edge.bundled.confused``: the bundled ``sim_model.pt`` with
  the output rows of wave/clap and squat/sit exchanged), since the bundled model itself already
  scores about 1.0 on the test session and a round from it shows nothing it learned;
- ``deepsense``: ``SequenceGRUClassifier`` (per-modality encoder sequences concatenated, 2-layer GRU,
  cosmo-method.md section 9) from random weights, all parameters trained jointly at lr 0.01 (the
  paper's supervised setting); modalities whose encoder exposes no temporal feature map (radar) are
  left out and named in the result;
- ``attnsense``: the active model's architecture with lambda = 0 (attention only), from random
  weights, trained jointly at lr 0.01.

The baselines train on exactly the windows the round's training step sees (``round_training_set``:
the round's own store read and held-out split, checked against the round's result).

Times: for ``cosmo``, ``wall_s`` is the whole round and ``train_s`` its training step alone (the
round's own timer); for the baselines both are the training alone. Each run also records this
process's CPU seconds and its monotonic window (the suite cuts its energy from the run's meter trace
and subtracts idle power), and the test accuracy on the held-out session before and after (``gain``).
The paper's Table 3 and the ratios put beside it are in ``cosmo_edge.bench.paper_table3``.
"""

import copy
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from cosmo_edge.bench.finetune_labels import draw_labeled, fill_store, rate_key, round_training_set
from cosmo_edge.bench.paper_table3 import CAVEAT, PAPER_SOURCE, PAPER_TABLE3, comparison, paper_ratios
from cosmo_edge.bundled.confused import SWAPS, confused_model

logger = logging.getLogger(__name__)

LABEL_RATES = (0.01, 0.02)
METHODS = ("cosmo", "deepsense", "attnsense")
BASELINE_LR = 0.01  # the paper's supervised learning rate (batch 16)


@dataclass
class FinetuneBenchConfig:
    """What the section simulates and trains (sessions: the last one is the test set)."""

    sessions: int = 9
    min_activity_s: float = 7.0
    max_activity_s: float = 13.0
    epochs: Optional[int] = None  # None: the daemon's round default
    t_iter_epochs: Optional[int] = None
    rates: Tuple[float, ...] = LABEL_RATES
    model: Optional[str] = None  # None: the bundled simulator model
    swaps: Tuple[Tuple[str, str], ...] = SWAPS  # output rows exchanged in the round's start; () = as is
    min_labels_per_class: int = 2  # the round holds one window per class out to judge on
    repeats: int = 1  # trainings per method and rate; wall time is their median
    seed: int = 0
    progress: bool = True


def _simulate(cfg: FinetuneBenchConfig, modalities: Sequence[str]) -> Any:
    from cosmo_edge.bundled.simdata import SimDataConfig, make_sim_dataset

    if cfg.sessions < 2:
        raise ValueError("the fine-tuning section needs at least 2 sessions (pool and test)")
    config = SimDataConfig(
        modalities=tuple(modalities),
        sessions=cfg.sessions,
        min_activity_s=cfg.min_activity_s,
        max_activity_s=cfg.max_activity_s,
        seed=1000 + cfg.seed,  # not the bundled model's training seed
    )
    return make_sim_dataset(config)


def _tensors(arrays: Dict[str, np.ndarray], norm: Optional[Dict[str, Any]]) -> Dict:
    """Normalised float32 tensors of ``arrays`` (the checkpoint's statistics, as the round applies them)."""
    import torch

    from cosmo_edge.preprocess import Normalization

    if norm is not None:
        arrays = Normalization.from_dict(norm).apply(dict(arrays))
    return {m: torch.as_tensor(np.asarray(x, dtype=np.float32)) for m, x in arrays.items()}


def _sequence_modalities(encoders: Any, x: Dict[str, Any]) -> Tuple[List[str], Dict[str, str]]:
    """Modalities whose encoder gives a temporal feature map (DeepSense needs one); reasons for the rest."""
    import torch

    from models.baselines import encoder_sequence

    kept, left_out = [], {}
    with torch.no_grad():
        for m, encoder in encoders.items():
            try:
                encoder_sequence(encoder.eval(), x[m][:2])
            except TypeError as exc:
                left_out[m] = str(exc)
                continue
            kept.append(m)
    return kept, left_out


def _build(method: str, active: Any, meta: Dict[str, Any], seq_modalities: List[str], seed: int) -> Any:
    """A baseline model from random weights (``cosmo`` is trained by the round, not built here)."""
    import torch
    from torch import nn

    from models.baselines import SequenceGRUClassifier
    from models.classifier import build_encoders, build_fusion_classifier, encoder_specs

    torch.manual_seed(seed)
    if method == "attnsense":
        return build_fusion_classifier(dict(meta["model_args"], qom_lambda=0.0))
    if method != "deepsense":
        raise ValueError(f"no baseline named {method!r}")
    specs = encoder_specs(active.encoders)
    encoders = build_encoders({m: specs[m] for m in seq_modalities})
    return SequenceGRUClassifier(nn.ModuleDict(dict(encoders.items())), active.num_classes)


def _settings(method: str, cfg: FinetuneBenchConfig, seed: int) -> Any:
    from cosmo_edge.config import FinetuneSettings
    from cosmo_edge.finetune.round import RoundSettings

    daemon = FinetuneSettings()  # what the daemon's round runs with (cosmo_edge.daemon.learning)
    epochs = cfg.epochs or daemon.epochs
    t_iter = cfg.t_iter_epochs or daemon.t_iter_epochs
    common = dict(epochs=epochs, t_iter_epochs=t_iter, threads=daemon.threads, seed=seed)
    if method == "cosmo":
        return RoundSettings(first_phase=daemon.first_phase, **common)
    return RoundSettings(alternation="joint", lr_encoders=BASELINE_LR, lr_classifier=BASELINE_LR, **common)


def _process_cpu_s() -> float:
    times = os.times()
    return times.user + times.system


@dataclass
class _Data:
    """What every timed run of one label rate shares."""

    store: Path  # the label store the round reads
    x_train: Dict[str, Any]  # the round's training windows, normalised (the baselines train on these)
    y_train: Any
    present_train: Any
    x_test: Dict[str, Any]
    y_test: np.ndarray
    modalities: List[str]


def _timed_round(start_path: Path, out_path: Path, settings: Any, data: _Data) -> Dict[str, Any]:
    """One whole daemon round (``run_round``) from ``start_path``, timed; the candidate scored on test."""
    import torch

    from cosmo_edge.finetune.round import evaluate_model, run_round
    from cosmo_edge.training.checkpoint import load_classifier

    cpu0, t0_ns, t0 = _process_cpu_s(), time.monotonic_ns(), time.perf_counter()
    result = run_round(start_path, data.store, out_path, copy.deepcopy(settings))
    wall_s, t1_ns = time.perf_counter() - t0, time.monotonic_ns()
    cpu_s = _process_cpu_s() - cpu0
    trained = int(data.y_train.shape[0])
    if result["train_windows"] != trained:
        raise RuntimeError(
            f"the round trained on {result['train_windows']} windows, the baselines on {trained}"
        )
    candidate, _ = load_classifier(out_path)
    present = torch.ones(len(data.y_test), len(data.modalities))
    metrics = evaluate_model(candidate, data.x_test, data.y_test, present)
    holdout = result["holdout"]
    return {
        "wall_s": round(wall_s, 4),
        "train_s": float(result["seconds"]["train"]),
        "cpu_s": round(cpu_s, 4),
        "window_ns": [t0_ns, t1_ns],
        "final_loss": result["losses"][-1],
        "test_accuracy": float(metrics["accuracy"]),
        "test_macro_f1": float(metrics["macro_f1"]),
        "round": {
            "seconds": result["seconds"],
            "promote": bool(result["promote"]),
            "reason": result["reason"],
            "held_out_windows": int(holdout["windows"]),
            "held_out_accuracy": {
                "active": float(holdout["active"]["accuracy"]),
                "candidate": float(holdout["candidate"]["accuracy"]),
            },
        },
    }


def _timed_training(model: Any, used: List[str], settings: Any, data: _Data) -> Dict[str, Any]:
    """Train baseline ``model`` on the round's training windows, timed; test accuracy before and after."""
    import torch

    from cosmo_edge.finetune.round import evaluate_model, train_iterative

    columns = [data.modalities.index(m) for m in used]
    x_test = {m: data.x_test[m] for m in used}
    test_present = torch.ones(len(data.y_test), len(used))
    start = evaluate_model(model, x_test, data.y_test, test_present)
    x = {m: data.x_train[m] for m in used}
    present = data.present_train[:, columns]
    cpu0, t0_ns, t0 = _process_cpu_s(), time.monotonic_ns(), time.perf_counter()
    losses = train_iterative(model, x, data.y_train, present, settings)
    wall_s, t1_ns = time.perf_counter() - t0, time.monotonic_ns()
    cpu_s = _process_cpu_s() - cpu0
    metrics = evaluate_model(model, x_test, data.y_test, test_present)
    return {
        "wall_s": round(wall_s, 4),
        "train_s": round(wall_s, 4),
        "cpu_s": round(cpu_s, 4),
        "window_ns": [t0_ns, t1_ns],
        "final_loss": round(losses[-1], 5),
        "start_test_accuracy": float(start["accuracy"]),
        "test_accuracy": float(metrics["accuracy"]),
        "test_macro_f1": float(metrics["macro_f1"]),
    }


def _warm_up(
    start_path: Path, active: Any, meta: Dict[str, Any], seq: List[str], cfg: FinetuneBenchConfig, data: _Data
) -> None:
    """One untimed one-epoch round and training per baseline, so no timed run pays first-call costs."""
    settings = _settings("cosmo", cfg, cfg.seed)
    settings.epochs = 1
    _timed_round(start_path, data.store.parent / "warm-up.pt", settings, data)
    for method in METHODS[1:]:
        settings = _settings(method, cfg, cfg.seed)
        settings.epochs = 1
        model = _build(method, active, meta, seq, cfg.seed)
        _timed_training(model, seq if method == "deepsense" else data.modalities, settings, data)


def _per_class(labels: np.ndarray, names: List[str]) -> Dict[str, int]:
    return {names[c]: int(np.sum(labels == c)) for c in np.unique(labels)}


def _median(repeats: List[Dict[str, Any]], key: str) -> float:
    return float(np.median([r[key] for r in repeats]))


def _mean(repeats: List[Dict[str, Any]], key: str) -> float:
    return float(np.mean([r[key] for r in repeats]))


def run_finetune_section(cfg: FinetuneBenchConfig) -> Dict[str, Any]:
    """Simulate, draw the labeled sets, run the round and train the baselines (see the module docstring).

    Returns a JSON-able dict; each run in ``runs`` has ``window_ns`` for the energy cut.
    """
    import tempfile

    import torch

    import models.radar  # noqa: F401  (registers the radar encoder the bundled model names)
    from cosmo_edge.bundled import SIM_MODEL
    from cosmo_edge.finetune.round import evaluate_model
    from cosmo_edge.training.checkpoint import load_classifier

    source = Path(cfg.model) if cfg.model else SIM_MODEL
    torch.set_num_threads(max(1, int(_settings("cosmo", cfg, cfg.seed).threads)))  # as run_round does
    with tempfile.TemporaryDirectory(prefix="cosmo-edge-bench-ft-") as work:
        tmp = Path(work)
        start_path = confused_model(tmp / "start.pt", source, cfg.swaps) if cfg.swaps else source
        source_model, meta = load_classifier(source)
        active, _ = load_classifier(start_path)
        modalities = list(meta["modalities"])
        started = time.perf_counter()
        ds = _simulate(cfg, modalities)
        simulate_s = time.perf_counter() - started
        names = [str(n) for n in meta["label_names"]]
        labels = np.array([names.index(n) for n in ds.label_names])[ds.labels]  # model's class order
        test = np.flatnonzero(ds.subjects == ds.subjects.max())
        pool = np.flatnonzero(ds.subjects < ds.subjects.max())
        norm = meta.get("normalization")
        x_test = _tensors({m: ds.inputs[m][test] for m in modalities}, norm)
        seq_modalities, left_out = _sequence_modalities(active.encoders, x_test)
        test_present = torch.ones(len(test), len(modalities))
        source_accuracy = evaluate_model(source_model, x_test, labels[test], test_present)["accuracy"]
        start_accuracy = evaluate_model(active, x_test, labels[test], test_present)["accuracy"]
        section: Dict[str, Any] = {
            "model": str(source),
            "modalities": modalities,
            "simulate_s": round(simulate_s, 3),
            "pool_windows": int(pool.size),
            "test_windows": int(test.size),
            "pool_per_class": _per_class(labels[pool], names),
            "source_test_accuracy": float(source_accuracy),
            "start_model": {"swapped_rows": [list(pair) for pair in cfg.swaps]},
            "active_test_accuracy": float(start_accuracy),  # the round's starting model
            "deepsense_modalities": seq_modalities,
            "deepsense_left_out": left_out,
            "settings": {m: _settings(m, cfg, cfg.seed).__dict__ for m in METHODS},
            "runs": [],
        }
        cosmo_settings = _settings("cosmo", cfg, cfg.seed)
        data: Dict[float, _Data] = {}
        draws: Dict[float, np.ndarray] = {}
        for rate in cfg.rates:
            seed = cfg.seed + int(round(rate * 1e4))
            draws[rate] = draw_labeled(labels, pool, rate, seed, cfg.min_labels_per_class)
            store = fill_store(tmp / f"state-{rate_key(rate).rstrip('%')}", ds, draws[rate], modalities)
            x, y, present, _ = round_training_set(store, names, modalities, cosmo_settings)
            data[rate] = _Data(
                store,
                _tensors(x, norm),
                torch.as_tensor(y),
                torch.as_tensor(present),
                x_test,
                labels[test],
                modalities,
            )
        _warm_up(start_path, active, meta, seq_modalities, cfg, data[cfg.rates[0]])
        bar = _bar(cfg.progress, len(cfg.rates) * len(METHODS) * cfg.repeats)
        for rate in cfg.rates:
            d = data[rate]
            for method in METHODS:
                used = seq_modalities if method == "deepsense" else modalities
                settings = _settings(method, cfg, cfg.seed)
                repeats = []
                for k in range(cfg.repeats):
                    if method == "cosmo":
                        out = tmp / f"candidate-{rate_key(rate).rstrip('%')}-{k}.pt"
                        repeats.append(dict(_timed_round(start_path, out, settings, d)))
                        repeats[-1]["start_test_accuracy"] = float(start_accuracy)
                    else:
                        model = _build(method, active, meta, seq_modalities, cfg.seed)
                        repeats.append(_timed_training(model, used, settings, d))
                    bar(f"{rate_key(rate)} {method}")
                section["runs"].append(
                    _run_record(rate, method, used, settings, draws[rate], labels, names, d, repeats)
                )
                logger.info("fine-tune %s %s: %s", rate_key(rate), method, section["runs"][-1]["wall_s"])
        bar(None)
    return section


def _run_record(
    rate: float,
    method: str,
    used: List[str],
    settings: Any,
    index: np.ndarray,
    labels: np.ndarray,
    names: List[str],
    data: _Data,
    repeats: List[Dict[str, Any]],
) -> Dict[str, Any]:
    """One (rate, method) row: medians of the times, means of the accuracies, every repeat kept."""
    record: Dict[str, Any] = {
        "rate": rate_key(rate),
        "method": method,
        "timed": "whole round (run_round)" if method == "cosmo" else "training only",
        "labeled_windows": int(index.size),
        "labeled_per_class": _per_class(labels[index], names),
        "train_windows": int(data.y_train.shape[0]),
        "modalities": list(used),
        "epochs": settings.epochs,
        "wall_s": _median(repeats, "wall_s"),
        "train_s": _median(repeats, "train_s"),
        "cpu_s": _median(repeats, "cpu_s"),
        "start_test_accuracy": _mean(repeats, "start_test_accuracy"),
        "test_accuracy": _mean(repeats, "test_accuracy"),
        "test_macro_f1": _mean(repeats, "test_macro_f1"),
        "repeats": repeats,
    }
    record["gain"] = record["test_accuracy"] - record["start_test_accuracy"]
    rounds = [r["round"] for r in repeats if "round" in r]
    if rounds:
        record["round"] = {
            "promoted": sum(r["promote"] for r in rounds),
            "of": len(rounds),
            "held_out_windows": rounds[0]["held_out_windows"],
            "held_out_accuracy_active": float(np.mean([r["held_out_accuracy"]["active"] for r in rounds])),
            "held_out_accuracy_candidate": float(
                np.mean([r["held_out_accuracy"]["candidate"] for r in rounds])
            ),
        }
    return record


def _bar(enabled: bool, total: int) -> Callable[[Optional[str]], None]:
    """``update(desc)`` advances a tqdm bar by one run; ``update(None)`` closes it; inert when off."""
    if not enabled:
        return lambda desc: None
    from tqdm import tqdm

    bar = tqdm(total=total, desc="fine-tuning", unit="run", leave=False)

    def update(desc: Optional[str]) -> None:
        if desc is None:
            bar.close()
            return
        bar.set_postfix_str(desc)
        bar.update(1)

    return update


def attach_energy(section: Dict[str, Any], energy_of: Callable[[List[int]], Dict[str, Any]]) -> None:
    """Add energy to every run, then the measured-vs-paper comparison.

    ``energy_of(window_ns)`` gives one training's energy (``available``, ``gross_j``, ``net_j`` or a
    ``reason``); a run's ``energy`` is that of each repeat plus the median gross and net joules.
    """
    for run in section["runs"]:
        per_repeat = [energy_of(r["window_ns"]) for r in run["repeats"]]
        for repeat, energy in zip(run["repeats"], per_repeat):
            repeat["energy"] = energy
        energy = {"available": all(e.get("available") for e in per_repeat)}
        if energy["available"]:
            for key in ("gross_j", "net_j"):
                values = [e.get(key) for e in per_repeat]
                energy[key] = None if None in values else float(np.median(values))
        else:
            energy["reason"] = next((e.get("reason") for e in per_repeat if e.get("reason")), "no meter")
        run["energy"] = energy
    section["comparison"] = comparison(section["runs"])
    section["paper"] = {"table3": PAPER_TABLE3, "ratios": paper_ratios(), "source": PAPER_SOURCE}
    section["caveat"] = CAVEAT

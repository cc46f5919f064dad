"""Fine-tuning cost: one Cosmo on-device round beside DeepSense- and AttnSense-style training.

The data are simulator windows (``cosmo_edge.bundled.simdata``: IMU, depth and radar through the
daemon's own channel and window code). The last simulated session is the test set; the others are
the pool. At each label rate (1 % and 2 % of the pool) ``draw_labeled`` takes, per class,
``labels_per_class`` windows (the rate times the class's pool count, rounded half up, at least 1).
On exactly those windows, with the same epoch budget and batch size:

- ``cosmo``: the round's training step (``cosmo_edge.finetune.round.train_iterative``, iterative
  fusion learning, encoder and classifier blocks alternating, classifier first) on a copy of the
  active model (the bundled ``sim_model.pt``), with the daemon's round settings;
- ``deepsense``: ``SequenceGRUClassifier`` (per-modality encoder sequences concatenated, 2-layer GRU,
  cosmo-method.md section 9) from random weights, all parameters trained jointly at lr 0.01 (the
  paper's supervised setting); modalities whose encoder exposes no temporal feature map (radar) are
  left out and named in the result;
- ``attnsense``: the active model's architecture with lambda = 0 (attention only), from random
  weights, trained jointly at lr 0.01.

Each run records wall time, this process's CPU seconds and its monotonic window (the suite cuts its
energy from the run's meter trace and subtracts idle power), then test accuracy on the held-out
session. The paper's Table 3 (cosmo-method.md section 10) is kept in ``PAPER_TABLE3``; hardware,
dataset and model size differ, so only the ratios Cosmo / DeepSense and Cosmo / AttnSense compare.
"""

import copy
import logging
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

logger = logging.getLogger(__name__)

LABEL_RATES = (0.01, 0.02)
METHODS = ("cosmo", "deepsense", "attnsense")
BASELINE_LR = 0.01  # the paper's supervised learning rate (batch 16)
CAVEAT = (
    "The paper's numbers are from a Jetson TX2 on a larger dataset with a larger model; absolute "
    "times and energies do not transfer, so compare the ratios Cosmo / DeepSense and Cosmo / AttnSense."
)

# cosmo-method.md section 10, Table 3 (training overhead on the Jetson TX2; stage 2 only for Cosmo).
PAPER_TABLE3: Dict[str, Dict[str, Dict[str, float]]] = {
    "time_min": {
        "1%": {"cosmo": 25.93, "deepsense": 38.38, "attnsense": 62.52},
        "2%": {"cosmo": 49.87, "deepsense": 74.42, "attnsense": 120.98},
    },
    "energy_kj": {
        "1%": {"cosmo": 21.34, "deepsense": 30.99, "attnsense": 51.71},
        "2%": {"cosmo": 40.35, "deepsense": 60.90, "attnsense": 98.58},
    },
}
PAPER_SOURCE = "cosmo-method.md section 10, Table 3 [deck]: Jetson TX2, dataset not named (likely USC-HAD)"


def rate_key(rate: float) -> str:
    """``0.01`` -> ``"1%"`` (the keys of ``PAPER_TABLE3``)."""
    return f"{rate * 100:g}%"


def labels_per_class(class_counts: Dict[int, int], rate: float) -> Dict[int, int]:
    """Labeled windows per class: ``rate x count`` rounded half up, at least 1, at most ``count``."""
    if not 0 < rate <= 1:
        raise ValueError(f"label rate must be in (0, 1], got {rate}")
    out = {}
    for label, count in class_counts.items():
        if count < 1:
            continue
        out[label] = min(int(count), max(1, int(math.floor(rate * count + 0.5))))
    return out


def draw_labeled(labels: np.ndarray, pool: np.ndarray, rate: float, seed: int) -> np.ndarray:
    """Indices into ``labels``: ``labels_per_class`` windows of every class present in ``pool``."""
    pool_labels = labels[pool]
    classes, counts = np.unique(pool_labels, return_counts=True)
    wanted = labels_per_class({int(c): int(n) for c, n in zip(classes, counts)}, rate)
    rng = np.random.default_rng(seed)
    parts = [rng.permutation(pool[pool_labels == c])[:k] for c, k in wanted.items()]
    return np.sort(np.concatenate(parts))


def ratio(numerator: Optional[float], denominator: Optional[float]) -> Optional[float]:
    """``numerator / denominator``, or None when either is missing or the denominator is not positive."""
    if numerator is None or denominator is None or denominator <= 0:
        return None
    return numerator / denominator


def cosmo_ratios(values: Dict[str, Optional[float]]) -> Dict[str, Optional[float]]:
    """``{"cosmo/deepsense": .., "cosmo/attnsense": ..}`` of one quantity per method."""
    return {
        f"cosmo/{other}": ratio(values.get("cosmo"), values.get(other))
        for other in ("deepsense", "attnsense")
    }


def paper_ratios() -> Dict[str, Dict[str, Dict[str, Optional[float]]]]:
    """The Table 3 ratios: ``{quantity: {rate: {"cosmo/deepsense": .., "cosmo/attnsense": ..}}}``."""
    return {
        quantity: {rate: cosmo_ratios(dict(cells)) for rate, cells in table.items()}
        for quantity, table in PAPER_TABLE3.items()
    }


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


def _tensors(ds: Any, index: np.ndarray, norm: Optional[Dict[str, Any]], modalities: Sequence[str]) -> Dict:
    import torch

    from cosmo_edge.preprocess import Normalization

    data = {m: ds.inputs[m][index] for m in modalities}
    if norm is not None:
        data = Normalization.from_dict(norm).apply(data)
    return {m: torch.as_tensor(np.asarray(x, dtype=np.float32)) for m, x in data.items()}


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
    import torch
    from torch import nn

    from models.baselines import SequenceGRUClassifier
    from models.classifier import build_encoders, build_fusion_classifier, encoder_specs

    if method == "cosmo":
        return copy.deepcopy(active)
    torch.manual_seed(seed)
    if method == "attnsense":
        return build_fusion_classifier(dict(meta["model_args"], qom_lambda=0.0))
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


def _warm_up(
    active: Any, meta: Dict[str, Any], seq_modalities: List[str], cfg: FinetuneBenchConfig, x: Dict
) -> None:
    """One untimed epoch per method, so no timed run pays first-call costs (allocations, lazy init)."""
    import torch

    from cosmo_edge.finetune.round import train_iterative

    n = int(next(iter(x.values())).shape[0])
    y = torch.as_tensor(np.arange(n) % active.num_classes)
    for method in METHODS:
        used = seq_modalities if method == "deepsense" else list(x)
        settings = _settings(method, cfg, cfg.seed)
        settings.epochs = 1
        model = _build(method, active, meta, seq_modalities, cfg.seed)
        train_iterative(model, {m: x[m] for m in used}, y, torch.ones(n, len(used)), settings)


def _process_cpu_s() -> float:
    times = os.times()
    return times.user + times.system


def run_finetune_section(cfg: FinetuneBenchConfig) -> Dict[str, Any]:
    """Simulate, draw the labeled sets and train every method at every rate (see the module docstring).

    Returns a JSON-able dict; each run in ``runs`` has ``window_ns`` for the energy cut.
    """
    import torch

    import models.radar  # noqa: F401  (registers the radar encoder the bundled model names)
    from cosmo_edge.bundled import SIM_MODEL
    from cosmo_edge.finetune.round import evaluate_model, train_iterative
    from cosmo_edge.training.checkpoint import load_classifier

    model_path = Path(cfg.model) if cfg.model else SIM_MODEL
    torch.set_num_threads(max(1, int(_settings("cosmo", cfg, cfg.seed).threads)))  # as run_round does
    active, meta = load_classifier(model_path)
    modalities = list(meta["modalities"])
    started = time.perf_counter()
    ds = _simulate(cfg, modalities)
    simulate_s = time.perf_counter() - started
    names = [str(n) for n in meta["label_names"]]
    remap = np.array([names.index(n) for n in ds.label_names])  # simulator order -> model order
    labels = remap[ds.labels]
    test = np.flatnonzero(ds.subjects == ds.subjects.max())
    pool = np.flatnonzero(ds.subjects < ds.subjects.max())
    norm = meta.get("normalization")
    x_test = _tensors(ds, test, norm, modalities)
    seq_modalities, left_out = _sequence_modalities(active.encoders, x_test)
    start_accuracy = evaluate_model(active, x_test, labels[test], torch.ones(len(test), len(modalities)))
    section: Dict[str, Any] = {
        "model": str(model_path),
        "modalities": modalities,
        "simulate_s": round(simulate_s, 3),
        "pool_windows": int(pool.size),
        "test_windows": int(test.size),
        "pool_per_class": {names[c]: int(np.sum(labels[pool] == c)) for c in np.unique(labels[pool])},
        "active_test_accuracy": float(start_accuracy["accuracy"]),
        "deepsense_modalities": seq_modalities,
        "deepsense_left_out": left_out,
        "settings": {m: _settings(m, cfg, cfg.seed).__dict__ for m in METHODS},
        "runs": [],
    }
    draws = {
        rate: draw_labeled(labels, pool, rate, seed=cfg.seed + int(round(rate * 1e4))) for rate in cfg.rates
    }
    _warm_up(active, meta, seq_modalities, cfg, _tensors(ds, draws[cfg.rates[0]], norm, modalities))
    bar = _bar(cfg.progress, len(cfg.rates) * len(METHODS) * cfg.repeats)
    for rate in cfg.rates:
        index = draws[rate]
        x_all = _tensors(ds, index, norm, modalities)
        y = torch.as_tensor(labels[index])
        for method in METHODS:
            used = seq_modalities if method == "deepsense" else modalities
            settings = _settings(method, cfg, cfg.seed)
            repeats = []
            for _ in range(cfg.repeats):
                model = _build(method, active, meta, seq_modalities, cfg.seed)
                x = {m: x_all[m] for m in used}
                present = torch.ones(len(index), len(used))
                cpu0, t0_ns, t0 = _process_cpu_s(), time.monotonic_ns(), time.perf_counter()
                losses = train_iterative(model, x, y, present, settings)
                wall_s, t1_ns = time.perf_counter() - t0, time.monotonic_ns()
                cpu_s = _process_cpu_s() - cpu0
                test_present = torch.ones(len(test), len(used))
                metrics = evaluate_model(model, {m: x_test[m] for m in used}, labels[test], test_present)
                repeats.append(
                    {
                        "wall_s": round(wall_s, 4),
                        "cpu_s": round(cpu_s, 4),
                        "window_ns": [t0_ns, t1_ns],
                        "final_loss": round(losses[-1], 5),
                        "test_accuracy": float(metrics["accuracy"]),
                        "test_macro_f1": float(metrics["macro_f1"]),
                    }
                )
                bar(f"{rate_key(rate)} {method}")
            section["runs"].append(
                {
                    "rate": rate_key(rate),
                    "method": method,
                    "labeled_windows": int(index.size),
                    "labeled_per_class": {
                        names[c]: int(np.sum(labels[index] == c)) for c in np.unique(labels[index])
                    },
                    "modalities": list(used),
                    "epochs": settings.epochs,
                    "wall_s": float(np.median([r["wall_s"] for r in repeats])),
                    "cpu_s": float(np.median([r["cpu_s"] for r in repeats])),
                    "test_accuracy": float(np.mean([r["test_accuracy"] for r in repeats])),
                    "test_macro_f1": float(np.mean([r["test_macro_f1"] for r in repeats])),
                    "repeats": repeats,
                }
            )
            logger.info("fine-tune %s %s: %s", rate_key(rate), method, section["runs"][-1]["wall_s"])
    bar(None)
    return section


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


def comparison(runs: List[Dict[str, Any]]) -> Dict[str, Any]:
    """Per rate: measured wall s and net kJ per method, and the Cosmo ratios measured and in the paper."""
    out: Dict[str, Any] = {}
    for rate in sorted({r["rate"] for r in runs}, key=lambda k: float(k.rstrip("%"))):
        rows = {r["method"]: r for r in runs if r["rate"] == rate}
        time_s = {m: rows[m]["wall_s"] for m in rows}
        energy_j = {m: (rows[m].get("energy") or {}).get("net_j") for m in rows}
        paper = paper_ratios()
        out[rate] = {
            "wall_s": time_s,
            "net_energy_j": energy_j,
            "ratios_time": cosmo_ratios(time_s),
            "ratios_energy": cosmo_ratios(energy_j),
            "paper_ratios_time": paper["time_min"].get(rate),
            "paper_ratios_energy": paper["energy_kj"].get(rate),
        }
    return out

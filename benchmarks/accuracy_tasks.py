"""Work units of the accuracy study (``accuracy.py``); each runs in its own worker process.

A task is one (kind, label rate, seed[, parameter]) and returns result rows, one per trained model:

- ``cosmo``: stage 1 + QoM (cached in the run directory), stage 2, and the ablations that reuse the
  same stage 1 (no QoM: lambda = 0; no alternation: joint; SumAttn where widths allow);
- ``scratch``: supervised, AttnSense-style, DeepSense-style and SingleModal per modality;
- ``cmc`` / ``cpc``: pre-training (cached) then joint fine-tuning;
- ``fixed`` / ``views``: stage 1 with fixed fusion weights / another P, then stage 2;
- ``unlabeled``: stage 1 on a seeded fraction of the unlabeled split, then stage 2 (Fig. 12).
"""

import dataclasses
import hashlib
import json
import logging
import pathlib
from typing import Any, Dict, List, Optional

import numpy as np

logger = logging.getLogger("accuracy")

USC_DATASET = "usc-had"


def experiment(task: Dict[str, Any], config):
    """ExperimentData for the task's dataset, label rate and seed (same split for every method)."""
    from cosmo_edge.training.data import load_dataset, prepare_experiment

    if config.data.dataset != USC_DATASET:
        return prepare_experiment(load_dataset(config.data, config.seed), config.data, config.seed)
    from cosmo_edge.datasets import load_usc_had, resolve_data_root, usc_split
    from cosmo_edge.datasets.usc_had import fit_normalization
    from cosmo_edge.training.data import experiment_from_indices

    ds = load_usc_had(resolve_data_root(config.data.data_root)).select_modalities(config.data.modalities)
    split, test = usc_split(ds, config.data.label_rate, config.seed)
    pool = np.concatenate([split.labeled, split.unlabeled])
    normalization = fit_normalization(ds, pool)
    indices = {"labeled": split.labeled, "unlabeled": split.unlabeled, "validation": split.validation}
    indices["test"] = test
    return experiment_from_indices(ds, indices, normalization)


def task_config(task: Dict[str, Any], extra: Optional[Dict[str, Any]] = None):
    """RunConfig of the task: study settings, dataset/pair/rate/seed, then ``extra`` overrides."""
    from cosmo_edge.training.config import RunConfig, apply_overrides

    overrides = dict(task["settings"])
    overrides.update(
        {
            "data.dataset": "utd-mhad" if task["dataset"] == USC_DATASET else task["dataset"],
            "data.modalities": task["pair"].split(","),
            "data.label_rate": task["rate"],
            "data.data_root": task["data_root"],
            "data.cache_dir": task["cache_dir"],
            "seed": task["seed"],
        }
    )
    overrides.update(extra or {})
    config = apply_overrides(RunConfig(), overrides)
    if task["dataset"] == USC_DATASET:  # RunConfig validates dataset names only when loading
        config = dataclasses.replace(config, data=dataclasses.replace(config.data, dataset=USC_DATASET))
    return config


def summary(name: str, result: Dict[str, Any], keep_history: bool) -> Dict[str, Any]:
    """One result row: test metrics at the last epoch and at the validation-selected epoch."""
    last = result["last"]["test"]
    row = {"variant": name, "test_accuracy": last["accuracy"], "test_macro_f1": last["macro_f1"]}
    selected = result.get("val_selected")
    if selected is not None:
        row["valsel_epoch"] = selected["epoch"]
        row["valsel_test_accuracy"] = selected["metrics"]["test"]["accuracy"]
        row["valsel_test_macro_f1"] = selected["metrics"]["test"]["macro_f1"]
    row["seconds"] = result["seconds"]
    if keep_history:
        row["history"] = [
            {k: h[k] for k in ("epoch", "test_accuracy", "validation_accuracy") if k in h}
            for h in result["history"]
        ]
    return row


def cached_pretrain(task: Dict[str, Any], method: str, config, data, tag: str):
    """The method's pre-training result, loaded from the run directory when already computed there."""
    from cosmo_edge.training.baselines import load_method_pretrained, pretrain_method, save_method_pretrain

    key = json.dumps({"method": method, "config": config.to_dict(), "tag": tag}, sort_keys=True)
    digest = hashlib.sha1(key.encode("utf-8")).hexdigest()[:12]
    path = (
        pathlib.Path(task["run_dir"])
        / "stage1"
        / f"{tag}_{method}_r{task['rate']:g}_s{task['seed']}_{digest}.pt"
    )
    if path.is_file():
        _, result, meta = load_method_pretrained(path)
        result.seconds = {"stage1": meta["metrics"]["stage1"]["seconds"], "qom": 0.0, "cached": True}
        return result
    result = pretrain_method(method, config, data, progress=False)
    save_method_pretrain(path, method, config, data, result)
    return result


def subsample_unlabeled(data, fraction: float, seed: int):
    """A copy of ``data`` whose unlabeled split keeps a seeded ``fraction`` of its rows."""
    inputs, labels = data.splits["unlabeled"]
    n = len(labels)
    keep = np.sort(np.random.default_rng(1000 + seed).permutation(n)[: max(2, int(round(fraction * n)))])
    splits = dict(data.splits)
    splits["unlabeled"] = ({m: x[keep] for m, x in inputs.items()}, labels[keep])
    subjects = dict(data.subjects, unlabeled=data.subjects["unlabeled"][keep])
    return dataclasses.replace(data, splits=splits, subjects=subjects)


def run_task(task: Dict[str, Any]) -> Dict[str, Any]:
    """Run one task (see the module docstring); returns {"key", "task", "rows", ...}."""
    import torch

    from cosmo_edge.training.baselines import finetune_method
    from cosmo_edge.training.config import apply_overrides
    from cosmo_edge.training.seeding import seed_everything

    torch.set_num_threads(1)
    kind, param = task["kind"], task.get("param")
    config = task_config(task)
    seed_everything(config.seed)
    data = experiment(task, config)
    rows: List[Dict[str, Any]] = []
    info: Dict[str, Any] = {"labeled": len(data.splits["labeled"][1])}
    info["unlabeled"] = len(data.splits["unlabeled"][1])

    def finetune(name: str, method: str, cfg, pre=None, modality=None, history=False) -> None:
        seed_everything(cfg.seed)
        _, result = finetune_method(method, cfg, data, pre, progress=False, modality=modality)
        rows.append(summary(name, result, history))

    if kind == "scratch":
        for method in ("supervised", "attnsense", "deepsense"):
            finetune(method, method, config, history=True)
        for modality in config.data.modalities:
            finetune(f"singlemodal-{modality}", "singlemodal", config, modality=modality)
    elif kind in ("cmc", "cpc"):
        pre = cached_pretrain(task, kind, config, data, "main")
        info["pretrain_s"] = pre.seconds["stage1"]
        finetune(kind, kind, config, pre, history=True)
    elif kind == "cosmo":
        pre = cached_pretrain(task, "cosmo", config, data, "main")
        info.update(pretrain_s=pre.seconds["stage1"], qom_weights=pre.qom["weights"])
        finetune("cosmo", "cosmo", config, pre, history=True)
        if task.get("ablations"):
            finetune("no-qom", "cosmo", apply_overrides(config, {"model.qom_lambda": 0.0}), pre)
            finetune("no-alternation", "cosmo", apply_overrides(config, {"stage2.alternation": "joint"}), pre)
            widths = {int(e.feature_dim) for e in pre.model.encoders.values()}
            if len(widths) == 1 and config.model.fusion_op != "sum":
                finetune("sum-attn", "cosmo", apply_overrides(config, {"model.fusion_op": "sum"}), pre)
    elif kind in ("fixed", "views", "unlabeled"):
        extra = {"fixed": {"stage1.weights": "fixed"}, "views": {"stage1.num_views": param}}.get(kind, {})
        cfg = apply_overrides(config, extra)
        used = subsample_unlabeled(data, float(param), config.seed) if kind == "unlabeled" else data
        tag = f"unl{param}" if kind == "unlabeled" else "main"
        pre = cached_pretrain(task, "cosmo", cfg, used, tag)
        info["pretrain_s"] = pre.seconds["stage1"]
        info["unlabeled_used"] = len(used.splits["unlabeled"][1])
        name = {"fixed": "fixed-weights", "views": f"P={param}", "unlabeled": f"unlabeled={param}"}[kind]
        finetune(name, "cosmo", cfg, pre)
    else:
        raise ValueError(f"unknown task kind {kind!r}")
    return {"key": task["key"], "kind": kind, "rate": task["rate"], "seed": task["seed"], "param": param,
            "rows": rows, **info}  # fmt: skip

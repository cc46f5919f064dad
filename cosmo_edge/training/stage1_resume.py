"""Resumable stage-1 training state in the run directory: ``stage1_state/epoch_NNNNN.pt``.

Rank 0 writes one file every ``every_epochs`` epochs (and after the last), atomically (temp file +
rename), keeping the newest ``keep_last``. A plain dict, loadable with ``torch.load(weights_only=True)``:
``format``, ``epoch`` (completed epochs; the learning rate of the next one follows from it),
``model`` (state dict, plain BatchNorm keys), ``optimiser`` (SGD state: momentum buffers, lr),
``history`` (the per-epoch rows so far), ``fingerprint`` (the run config without
``stage1.epochs`` and the data paths) and ``world_size``.

No RNG state is stored because none is needed: the sample order comes from (seed, epoch), every
augmentation and fusion weight from (seed, epoch, step or sample) and the dropout stream is reseeded
from (seed, epoch, rank) at each epoch start (``distributed_data``), so a resumed run repeats an
uninterrupted one exactly. A fingerprint that differs from the new run's raises ``ResumeError``
(raising ``--epochs`` to train longer is allowed).
"""

import logging
import pathlib
import pickle
import re
from typing import Any, Dict, List, Optional, Tuple, Union

import torch
from torch import nn

logger = logging.getLogger(__name__)

STATE_DIRNAME = "stage1_state"
FORMAT = "cosmo-edge-stage1-state"
FORMAT_VERSION = 1
_NAME = re.compile(r"^epoch_(\d+)\.pt$")
PathLike = Union[str, pathlib.Path]


class ResumeError(RuntimeError):
    """The run directory holds stage-1 state that cannot continue this run."""


def state_dir(run_dir: PathLike) -> pathlib.Path:
    """``<run_dir>/stage1_state``."""
    return pathlib.Path(run_dir) / STATE_DIRNAME


def state_files(run_dir: PathLike) -> List[Tuple[int, pathlib.Path]]:
    """(epoch, path) of every state file, oldest first."""
    folder = state_dir(run_dir)
    if not folder.is_dir():
        return []
    found = []
    for path in folder.iterdir():
        match = _NAME.match(path.name)
        if match:
            found.append((int(match.group(1)), path))
    return sorted(found)


def save_state(
    run_dir: PathLike,
    epoch: int,
    model: nn.Module,
    optimiser: torch.optim.Optimizer,
    history: List[Dict[str, Any]],
    fingerprint: Optional[Dict[str, Any]],
    world_size: int,
    keep_last: int = 2,
) -> pathlib.Path:
    """Write the state after ``epoch`` completed epochs; prune all but the newest ``keep_last`` files."""
    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "epoch": int(epoch),
        "model": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
        "optimiser": _to_cpu(optimiser.state_dict()),
        "history": [dict(row) for row in history],
        "fingerprint": fingerprint,
        "world_size": int(world_size),
    }
    folder = state_dir(run_dir)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"epoch_{int(epoch):05d}.pt"
    tmp = path.with_suffix(".pt.tmp")
    torch.save(payload, tmp)
    tmp.replace(path)
    for _, old in state_files(run_dir)[: -max(1, keep_last)]:
        old.unlink()
    logger.info("stage-1 state after epoch %d: %s", epoch, path)
    return path


def _to_cpu(value: Any) -> Any:
    """Nested dicts/lists of tensors with every tensor copied to the CPU."""
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().clone()
    if isinstance(value, dict):
        return {k: _to_cpu(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_to_cpu(v) for v in value)
    return value


def read_state(path: PathLike) -> Dict[str, Any]:
    """Load one state file (weights only) and check its format."""
    try:
        payload = torch.load(str(path), map_location="cpu", weights_only=True)
    except TypeError:  # torch < 1.13 has no weights_only; the file holds tensors and plain values only
        payload = torch.load(str(path), map_location="cpu")
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ResumeError(f"{path}: not a cosmo-edge stage-1 state file")
    if payload.get("format_version") != FORMAT_VERSION:
        raise ResumeError(f"{path}: state format {payload.get('format_version')}, expected {FORMAT_VERSION}")
    return payload


def latest_state(run_dir: PathLike) -> Optional[Dict[str, Any]]:
    """The newest readable state in ``run_dir`` (an unreadable newest file falls back to the one before)."""
    for epoch, path in reversed(state_files(run_dir)):
        try:
            state = read_state(path)
        except (OSError, EOFError, RuntimeError, pickle.UnpicklingError) as exc:
            logger.warning("cannot read %s (%s); trying an older state", path, exc)
            continue
        state["path"] = str(path)
        logger.info("found stage-1 state after epoch %d in %s", epoch, path)
        return state
    return None


def _flatten(value: Any, prefix: str = "") -> Dict[str, Any]:
    if isinstance(value, dict):
        out: Dict[str, Any] = {}
        for key, item in value.items():
            out.update(_flatten(item, f"{prefix}{key}."))
        return out
    return {prefix.rstrip("."): value}


def check_fingerprint(state: Dict[str, Any], fingerprint: Optional[Dict[str, Any]]) -> None:
    """Raise ``ResumeError`` naming the config keys in which ``state`` differs from this run."""
    saved = _flatten(state.get("fingerprint") or {})
    current = _flatten(fingerprint or {})
    differing = sorted(k for k in set(saved) | set(current) if saved.get(k) != current.get(k))
    if differing:
        shown = ", ".join(f"{k} ({saved.get(k)!r} -> {current.get(k)!r})" for k in differing[:6])
        raise ResumeError(
            f"{state.get('path', 'stage-1 state')} was written by a run with a different config: {shown}; "
            f"use a new --out or delete {STATE_DIRNAME}/ to start over"
        )


def restore_state(
    state: Dict[str, Any], model: nn.Module, optimiser: torch.optim.Optimizer
) -> Tuple[int, List[Dict[str, Any]]]:
    """Load model and optimiser from ``state``; return (completed epochs, history rows)."""
    model.load_state_dict(state["model"], strict=True)
    optimiser.load_state_dict(state["optimiser"])
    return int(state["epoch"]), [dict(row) for row in state["history"]]


# Keys that may change between an interrupted run and its restart: the length of stage 1 and where
# the same data is read from.
RESUMABLE_CHANGES = {"stage1": ("epochs",), "data": ("data_root", "cache_dir")}


def fingerprint_of(config_dict: Dict[str, Any]) -> Dict[str, Any]:
    """The run config as compared on resume: all of it but ``RESUMABLE_CHANGES``."""
    out = dict(config_dict)
    for section, keys in RESUMABLE_CHANGES.items():
        out[section] = {k: v for k, v in config_dict.get(section, {}).items() if k not in keys}
    return out

"""Checkpoints as plain dicts (torch.save), loadable with ``torch.load(weights_only=True)``.

Keys: ``format``, ``format_version``, ``kind`` ("stage1" or "classifier"), ``model_args`` (rebuilds
the architecture), ``modalities`` (name -> input shape, in model order), ``label_names``,
``normalization`` (``Normalization.to_dict()``), ``qom`` (the QoM record or None), ``state_dict``,
``metrics``, ``config`` (the resolved run config) and ``versions``. No pickled objects.

Loading is strict: a checkpoint with missing or unexpected top-level keys, or a state dict whose
keys do not match the rebuilt model, raises ``CheckpointError`` naming the keys (cosmo-method.md 11.5).
"""

import logging
import pathlib
import pickle
import platform
from typing import Any, Dict, List, Optional, Tuple, Union

import torch
from torch import nn

from cosmo_edge import __version__
from models.classifier import FusionClassifier, build_encoders, build_fusion_classifier
from models.cosmo import CosmoPretrainModel

logger = logging.getLogger(__name__)

FORMAT = "cosmo-edge-checkpoint"
FORMAT_VERSION = 1
KINDS = ("stage1", "classifier")
REQUIRED_KEYS = (
    "format",
    "format_version",
    "kind",
    "model_args",
    "modalities",
    "label_names",
    "normalization",
    "qom",
    "state_dict",
    "metrics",
    "config",
    "versions",
)
PathLike = Union[str, pathlib.Path]


class CheckpointError(ValueError):
    """A checkpoint is not a cosmo-edge checkpoint, is of the wrong kind, or its keys do not match."""


def versions() -> Dict[str, str]:
    """Software versions recorded in every checkpoint."""
    return {"cosmo_edge": __version__, "torch": str(torch.__version__), "python": platform.python_version()}


def save_checkpoint(
    path: PathLike,
    kind: str,
    model: nn.Module,
    model_args: Dict[str, Any],
    input_shapes: Dict[str, Tuple[int, ...]],
    label_names: List[str],
    normalization: Optional[Dict[str, Any]],
    qom: Optional[Dict[str, Any]],
    metrics: Dict[str, Any],
    config: Dict[str, Any],
) -> pathlib.Path:
    """Write a checkpoint dict; the state dict is copied to CPU tensors."""
    if kind not in KINDS:
        raise CheckpointError(f"checkpoint kind must be one of {KINDS}, got {kind!r}")
    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "kind": kind,
        "model_args": model_args,
        "modalities": {m: [int(s) for s in input_shapes[m]] for m in model_args["encoders"]},
        "label_names": list(label_names),
        "normalization": normalization,
        "qom": qom,
        "state_dict": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
        "metrics": metrics,
        "config": config,
        "versions": versions(),
    }
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(payload, tmp)
    tmp.replace(path)
    logger.info("saved %s checkpoint %s", kind, path)
    return path


def _torch_load(path: PathLike) -> Any:
    """torch.load with weights_only=True where torch supports it (1.13+)."""
    try:
        return torch.load(str(path), map_location="cpu", weights_only=True)
    except TypeError:  # torch < 1.13 has no weights_only; our checkpoints hold no objects anyway
        return torch.load(str(path), map_location="cpu")


def read_checkpoint(path: PathLike, kind: Optional[str] = None) -> Dict[str, Any]:
    """Load and validate the dict (weights_only where torch supports it); check ``kind`` if given."""
    try:
        payload = _torch_load(path)
    except (pickle.UnpicklingError, RuntimeError, EOFError) as exc:
        raise CheckpointError(f"{path}: not a readable checkpoint ({str(exc).splitlines()[0]})") from exc
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a cosmo-edge checkpoint")
    missing = [k for k in REQUIRED_KEYS if k not in payload]
    unexpected = sorted(k for k in payload if k not in REQUIRED_KEYS)
    if missing or unexpected:
        raise CheckpointError(f"{path}: missing keys {missing}, unexpected keys {unexpected}")
    if payload["format_version"] != FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: format version {payload['format_version']}, expected {FORMAT_VERSION}"
        )
    if kind is not None and payload["kind"] != kind:
        raise CheckpointError(f"{path}: a {payload['kind']!r} checkpoint, expected {kind!r}")
    return payload


def load_state_strict(model: nn.Module, state_dict: Dict[str, torch.Tensor], source: str) -> None:
    """Load ``state_dict`` into ``model``; any missing or unexpected key raises CheckpointError."""
    expected = set(model.state_dict())
    given = set(state_dict)
    missing, unexpected = sorted(expected - given), sorted(given - expected)
    if missing or unexpected:
        raise CheckpointError(f"{source}: state_dict missing keys {missing}, unexpected keys {unexpected}")
    model.load_state_dict(state_dict, strict=True)


def load_classifier(path: PathLike) -> Tuple[FusionClassifier, Dict[str, Any]]:
    """(FusionClassifier in eval mode with the saved weights, the checkpoint dict minus state_dict)."""
    payload = read_checkpoint(path, kind="classifier")
    model = build_fusion_classifier(payload["model_args"])
    load_state_strict(model, payload["state_dict"], str(path))
    model.eval()
    meta = {k: v for k, v in payload.items() if k != "state_dict"}
    return model, meta


def pretrain_model_args(model: CosmoPretrainModel, head_hidden: int) -> Dict[str, Any]:
    """model_args for a stage-1 checkpoint."""
    from models.classifier import encoder_specs

    return {
        "encoders": encoder_specs(model.encoders),
        "proj_dim": model.proj_dim,
        "head_hidden": int(head_hidden),
    }


def load_pretrained(path: PathLike) -> Tuple[CosmoPretrainModel, Dict[str, Any]]:
    """(stage-1 model with its weights, the checkpoint dict minus state_dict)."""
    payload = read_checkpoint(path, kind="stage1")
    args = payload["model_args"]
    model = CosmoPretrainModel(build_encoders(args["encoders"]), args["proj_dim"], args["head_hidden"])
    load_state_strict(model, payload["state_dict"], str(path))
    meta = {k: v for k, v in payload.items() if k != "state_dict"}
    return model, meta

"""The run directory: resolved config, split ids, metrics JSON, QoM JSON and checkpoints.

Layout of ``--out DIR``::

    config.json       the resolved RunConfig
    split.json        trial ids of the labeled / unlabeled / validation / test parts
    metrics.json      one section per stage ("stage1", "qom", "stage2", "supervised", "evaluate")
    qom.json          the QoM record (H, k*, c, q, weights, silhouette curves)
    stage1.pt         encoders + projection heads (kind "stage1")
    classifier.pt     the stage-2 model (kind "classifier"); supervised.pt for the baseline
"""

import json
import logging
import pathlib
from typing import Any, Dict, Optional, Union

from cosmo_edge.training.checkpoint import pretrain_model_args, save_checkpoint
from cosmo_edge.training.config import RunConfig
from cosmo_edge.training.data import ExperimentData
from cosmo_edge.training.pipeline import PretrainResult
from models.classifier import FusionClassifier
from models.encoders import count_parameters

logger = logging.getLogger(__name__)

PathLike = Union[str, pathlib.Path]


def write_json(path: PathLike, data: Any) -> pathlib.Path:
    """Write ``data`` as indented JSON (atomically: temp file + rename)."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path


def update_metrics(out_dir: PathLike, section: str, values: Dict[str, Any]) -> pathlib.Path:
    """Set one section of ``metrics.json`` (other sections are kept)."""
    path = pathlib.Path(out_dir) / "metrics.json"
    metrics = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    metrics[section] = values
    return write_json(path, metrics)


def start_run(out_dir: PathLike, config: RunConfig, data: ExperimentData) -> pathlib.Path:
    """Create the directory and write ``config.json`` and ``split.json``."""
    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "config.json", config.to_dict())
    write_json(out / "split.json", data.split_ids)
    return out


def save_pretrain(
    out_dir: PathLike, config: RunConfig, data: ExperimentData, result: PretrainResult
) -> pathlib.Path:
    """Write stage1.pt, qom.json and the stage1 / qom sections of metrics.json; return the checkpoint."""
    out = pathlib.Path(out_dir)
    metrics = {
        "final_loss": result.history[-1]["loss"] if result.history else None,
        "seconds": result.seconds["stage1"],
        "history": result.history,
        "parameters": count_parameters(result.model),
    }
    update_metrics(out, "stage1", metrics)
    update_metrics(out, "qom", {"seconds": result.seconds["qom"], "weights": result.qom["weights"]})
    write_json(out / "qom.json", result.qom)
    return save_checkpoint(
        out / "stage1.pt",
        "stage1",
        result.model,
        pretrain_model_args(result.model, config.stage1.head_hidden),
        data.input_shapes,
        data.label_names,
        data.normalization.to_dict(),
        result.qom,
        {"stage1": {k: v for k, v in metrics.items() if k != "history"}},
        config.to_dict(),
    )


def summarise(result: Dict[str, Any]) -> Dict[str, Any]:
    """The headline metrics of a stage-2 / supervised result (last epoch and validation-selected)."""
    summary: Dict[str, Any] = {"seconds": result["seconds"], "last_epoch": result["last"]}
    if "val_selected" in result:
        summary["validation_selected"] = result["val_selected"]
    return summary


def save_classifier(
    out_dir: PathLike,
    name: str,
    config: RunConfig,
    data: ExperimentData,
    model: FusionClassifier,
    qom: Optional[Dict[str, Any]],
    result: Dict[str, Any],
) -> pathlib.Path:
    """Write ``<name>.pt`` and the ``name`` section of metrics.json (with the per-epoch history)."""
    out = pathlib.Path(out_dir)
    summary = summarise(result)
    summary["parameters"] = count_parameters(model)
    update_metrics(out, name, dict(summary, history=result["history"]))
    filename = "classifier.pt" if name == "stage2" else f"{name}.pt"
    return save_checkpoint(
        out / filename,
        "classifier",
        model,
        model.model_args(),
        data.input_shapes,
        data.label_names,
        data.normalization.to_dict(),
        qom,
        {name: summary},
        config.to_dict(),
    )

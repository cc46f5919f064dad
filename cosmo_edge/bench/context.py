"""What a benchmark run measures against: the machine's description and the model artifact.

``machine_info()`` records what makes results comparable (host, CPU, core count, kernel, library
versions, Jetson power mode and clocks). ``build_artifact`` loads a checkpoint, or builds a
``FusionClassifier`` with random weights in the real input shapes when none is given: latency and
FLOPs depend on the architecture, not on the weights.
"""

import logging
import os
import platform
import socket
from importlib import import_module
from typing import Any, Dict, Optional, Sequence, Tuple

from cosmo_edge import __version__
from cosmo_edge.energy.jetson_state import jetson_power_state

logger = logging.getLogger(__name__)

DEFAULT_NUM_CLASSES = 27  # UTD-MHAD


def _cpu_model() -> str:
    """The CPU model name from /proc/cpuinfo (x86 ``model name``, ARM ``Hardware``/``CPU part``)."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as handle:
            for line in handle:
                key, _, value = line.partition(":")
                if key.strip() in ("model name", "Hardware", "Model"):
                    return value.strip()
    except OSError as exc:
        logger.debug("no /proc/cpuinfo: %s", exc)
    return platform.processor() or platform.machine()


def _version(module_name: str) -> Optional[str]:
    try:
        return str(getattr(import_module(module_name), "__version__", "unknown"))
    except ImportError:
        return None


def machine_info() -> Dict[str, Any]:
    """JSON-able description of this machine and its software (see the module docstring)."""
    info: Dict[str, Any] = {
        "host": socket.gethostname(),
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "machine": platform.machine(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "cosmo_edge": __version__,
    }
    for name in ("numpy", "torch", "onnxruntime", "tensorrt", "torch2trt"):
        info[name] = _version(name)
    torch = import_module("torch")
    info["torch_threads"] = torch.get_num_threads()
    info["cuda"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    info["jetson"] = jetson_power_state()
    return info


def input_shapes_for(modalities: Sequence[str]) -> Dict[str, Tuple[int, ...]]:
    """Per-sample input shape of each modality (the shared preprocessing shapes; radar from models)."""
    from cosmo_edge.preprocess import INPUT_SHAPES
    from models.radar import INPUT_SHAPE as RADAR_SHAPE

    known = dict(INPUT_SHAPES)
    known["radar"] = tuple(RADAR_SHAPE)
    unknown = [m for m in modalities if m not in known]
    if unknown:
        raise ValueError(f"unknown modalities {unknown}; known: {sorted(known)}")
    return {m: tuple(known[m]) for m in modalities}


def build_artifact(checkpoint: Optional[str], modalities: Sequence[str], seed: int = 0) -> Tuple[Any, str]:
    """``(ModelArtifact, description)``: the checkpoint, or a random-weight model of ``modalities``."""
    from cosmo_edge.runtime import artifact_from_module, load_artifact

    if checkpoint:
        return load_artifact(checkpoint), f"checkpoint {checkpoint}"
    import torch
    from torch import nn

    from models.classifier import FusionClassifier
    from models.encoders import build_encoder

    torch.manual_seed(seed)
    shapes = input_shapes_for(modalities)
    encoders = nn.ModuleDict({m: build_encoder(m, shapes[m]) for m in modalities})
    model = FusionClassifier(
        encoders, DEFAULT_NUM_CLASSES, qom_weights=[1.0 / len(modalities)] * len(modalities)
    )
    labels = [f"class_{i}" for i in range(DEFAULT_NUM_CLASSES)]
    artifact = artifact_from_module(model, shapes, labels, modalities=list(modalities))
    return artifact, f"FusionClassifier ({'+'.join(modalities)}, default sizes, random weights)"

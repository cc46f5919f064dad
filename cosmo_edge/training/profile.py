"""Model size: parameter counts and FLOPs per sample (one window), overall and per encoder.

FLOPs count multiply-adds of convolutions and linear layers as 2 FLOPs each (BatchNorm, activations
and pooling are left out, as usual). ``torch.utils.flop_counter.FlopCounterMode`` is used where torch
has it (2.1+); older torch falls back to forward hooks on Conv1d/Conv2d/Linear, which count the same
thing for the layers our models use.
"""

import logging
from typing import Dict, Tuple

import torch
from torch import nn

from models.encoders import count_parameters

logger = logging.getLogger(__name__)


def _conv_flops(module: nn.Module, output: torch.Tensor) -> int:
    kernel = 1
    for size in module.kernel_size:
        kernel *= int(size)
    per_output = kernel * module.in_channels // module.groups
    return 2 * per_output * int(output.numel())


def hook_flops(model: nn.Module, *args) -> int:
    """FLOPs of ``model(*args)`` counted with forward hooks on Conv1d/2d/3d and Linear."""
    total = [0]

    def hook(module: nn.Module, inputs: Tuple, output: torch.Tensor) -> None:
        if isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Conv3d)):
            total[0] += _conv_flops(module, output)
        elif isinstance(module, nn.Linear):
            total[0] += (
                2 * module.in_features * module.out_features * int(output.numel() // module.out_features)
            )

    handles = [
        m.register_forward_hook(hook)
        for m in model.modules()
        if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear))
    ]
    try:
        with torch.no_grad():
            model(*args)
    finally:
        for handle in handles:
            handle.remove()
    return int(total[0])


def count_flops(model: nn.Module, *args) -> int:
    """FLOPs of one forward ``model(*args)`` (eval mode), with FlopCounterMode when available."""
    was_training = model.training
    model.eval()
    try:
        from torch.utils.flop_counter import FlopCounterMode
    except ImportError:
        FlopCounterMode = None  # noqa: N806 - torch < 2.1
    try:
        if FlopCounterMode is None:
            return hook_flops(model, *args)
        counter = FlopCounterMode(display=False)
        with counter, torch.no_grad():
            model(*args)
        return int(counter.get_total_flops())
    finally:
        model.train(was_training)


def example_inputs(input_shapes: Dict[str, Tuple[int, ...]], batch: int = 1) -> Dict[str, torch.Tensor]:
    """Random inputs of the given per-sample shapes (depth non-negative)."""
    generator = torch.Generator().manual_seed(0)
    return {m: torch.rand((batch,) + tuple(shape), generator=generator) for m, shape in input_shapes.items()}


def classifier_profile(model: nn.Module, input_shapes: Dict[str, Tuple[int, ...]]) -> Dict:
    """{"parameters", "flops_per_sample", "encoders": {modality: {"parameters", "flops_per_sample"}}}."""
    inputs = example_inputs(input_shapes)
    encoders = {
        m: {
            "parameters": count_parameters(model.encoders[m]),
            "flops_per_sample": count_flops(model.encoders[m], inputs[m]),
        }
        for m in model.encoders.keys()
    }
    return {
        "parameters": count_parameters(model),
        "flops_per_sample": count_flops(model, inputs),
        "encoders": encoders,
    }

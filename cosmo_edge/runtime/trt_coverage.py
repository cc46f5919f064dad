"""Check, without TensorRT, that torch2trt can convert every call a model makes.

torch2trt converts a model by running it with converters patched over torch functions, tensor methods
and module ``forward``s (by their dotted names, e.g. ``torch.Tensor.permute``); a call without a
converter leaves its output without a TensorRT tensor and the build fails later with an unhelpful
error, on the device. ``unconverted_calls`` replays the same walk on the CPU: it records every torch
call (``torch.overrides.TorchFunctionMode``) that is not nested inside a converted call (torch2trt
takes a lock while one runs) and returns those whose names have no converter, plus elementwise calls
that mix tensor dtypes (torch2trt's elementwise converters assert equal dtypes).

``TORCH2TRT_FUNCTIONS`` and ``TORCH2TRT_MODULES`` list the converters of the pinned torch2trt release
(v0.4.0, read from its ``torch2trt/converters`` sources); ``cosmo_edge.runtime.trt_converters`` adds
ours for the rest. A development and CI tool: it needs ``torch.overrides.TorchFunctionMode`` (torch
2.x; CI runs it there) and raises ImportError with that reason on older torch.
"""

import logging
from typing import FrozenSet, List, Sequence, Set

import torch
from torch import nn

logger = logging.getLogger(__name__)

if not hasattr(torch.overrides, "TorchFunctionMode"):
    raise ImportError(f"trt_coverage needs TorchFunctionMode, which torch {torch.__version__} lacks")

# Module types whose forward torch2trt converts as a whole (their inner calls are not visited).
TORCH2TRT_MODULES: FrozenSet[str] = frozenset(
    """
    torch.nn.Conv1d torch.nn.Conv2d torch.nn.Conv3d torch.nn.ConvTranspose2d torch.nn.BatchNorm1d
    torch.nn.BatchNorm2d torch.nn.Linear torch.nn.ReLU torch.nn.ReLU6 torch.nn.LogSoftmax
    torch.nn.AdaptiveAvgPool2d torch.nn.Identity
    """.split()
)

_TORCH2TRT_FUNCTIONS = """
torch.add torch.Tensor.__add__ torch.Tensor.__iadd__ torch.Tensor.__radd__
torch.sub torch.Tensor.__sub__ torch.Tensor.__isub__ torch.Tensor.__rsub__
torch.mul torch.Tensor.__mul__ torch.Tensor.__imul__ torch.Tensor.__rmul__
torch.div torch.Tensor.__div__ torch.Tensor.__truediv__ torch.Tensor.__itruediv__ torch.Tensor.__rdiv__
torch.Tensor.__rtruediv__ torch.pow torch.Tensor.__pow__ torch.Tensor.__rpow__
torch.cat torch.stack torch.chunk torch.Tensor.chunk torch.split torch.Tensor.split torch.narrow
torch.Tensor.permute torch.transpose torch.Tensor.transpose torch.Tensor.view torch.Tensor.reshape
torch.flatten torch.Tensor.flatten torch.squeeze torch.Tensor.squeeze torch.unsqueeze torch.Tensor.unsqueeze
torch.Tensor.__getitem__ torch.Tensor.contiguous torch.Tensor.expand
torch.relu torch.relu_ torch.Tensor.relu torch.nn.functional.relu torch.nn.functional.relu_
torch.nn.functional.relu6 torch.sigmoid torch.Tensor.sigmoid torch.nn.functional.sigmoid
torch.tanh torch.Tensor.tanh torch.nn.functional.tanh torch.nn.functional.leaky_relu
torch.nn.functional.elu torch.nn.functional.selu torch.nn.functional.softsign torch.nn.functional.softplus
torch.nn.functional.gelu torch.nn.functional.prelu
torch.softmax torch.Tensor.softmax torch.nn.functional.softmax
torch.exp torch.Tensor.exp torch.log torch.Tensor.log torch.sqrt torch.Tensor.sqrt torch.abs torch.Tensor.abs
torch.neg torch.Tensor.neg torch.Tensor.__neg__ torch.sin torch.cos torch.floor torch.ceil
torch.max torch.Tensor.max torch.min torch.Tensor.min torch.mean torch.Tensor.mean
torch.sum torch.Tensor.sum torch.prod torch.Tensor.prod
torch.clamp torch.Tensor.clamp torch.clamp_min torch.clamp_max
torch.gt torch.Tensor.__gt__ torch.lt torch.Tensor.__lt__ torch.eq torch.Tensor.__eq__
torch.ne torch.Tensor.__ne__
torch.nn.functional.avg_pool2d torch.nn.functional.max_pool2d torch.nn.functional.adaptive_avg_pool2d
torch.nn.functional.adaptive_max_pool2d torch.nn.functional.interpolate torch.nn.functional.pad
torch.nn.functional.normalize torch.nn.functional.batch_norm torch.nn.functional.layer_norm
torch.nn.functional.group_norm torch.nn.functional.instance_norm
torch.nn.functional.dropout torch.nn.functional.dropout2d torch.nn.functional.dropout3d
torch.matmul torch.Tensor.__matmul__
"""
TORCH2TRT_FUNCTIONS: FrozenSet[str] = frozenset(_TORCH2TRT_FUNCTIONS.split())

# TorchFunctionMode reports Python operators by their method names; torch2trt patches the dunders.
_OPERATOR_ALIASES = {
    "torch.Tensor.add": "torch.Tensor.__add__",
    "torch.Tensor.sub": "torch.Tensor.__sub__",
    "torch.Tensor.mul": "torch.Tensor.__mul__",
    "torch.Tensor.div": "torch.Tensor.__truediv__",
    "torch.Tensor.pow": "torch.Tensor.__pow__",
    "torch.Tensor.gt": "torch.Tensor.__gt__",
    "torch.Tensor.lt": "torch.Tensor.__lt__",
    "torch.Tensor.eq": "torch.Tensor.__eq__",
    "torch.Tensor.ne": "torch.Tensor.__ne__",
}
# Calls that read metadata only and never produce a tensor for the network.
_METADATA_CALLS = frozenset(
    """
    torch.Tensor.dim torch.Tensor.size torch.Tensor.shape.__get__ torch.Tensor.dtype.__get__
    torch.Tensor.device.__get__ torch.Tensor.ndim.__get__ torch.Tensor.__len__ torch.Tensor.numel
    torch.Tensor.requires_grad.__get__ torch.Tensor.is_floating_point
    """.split()
)
_ELEMENTWISE = frozenset(
    {"torch.add", "torch.sub", "torch.mul", "torch.div", "torch.where", "torch.max", "torch.min"}
    | {n for n in _OPERATOR_ALIASES.values()}
    | set(_OPERATOR_ALIASES)
)


def _call_name(func: object) -> str:
    name = torch.overrides.resolve_name(func)  # type: ignore[arg-type]
    return name or repr(func)


def _module_name(module: nn.Module) -> str:
    cls = type(module)
    if cls.__module__.startswith("torch.nn"):
        return f"torch.nn.{cls.__name__}"
    return f"{cls.__module__}.{cls.__name__}"


class _Recorder(torch.overrides.TorchFunctionMode):
    """Records top-level torch calls; calls inside converted modules/functions are skipped."""

    def __init__(self, converted: FrozenSet[str], mixed_dtype_ok: FrozenSet[str]) -> None:
        super().__init__()
        self.converted = converted
        self.mixed_dtype_ok = mixed_dtype_ok
        self.depth = 0
        self.problems: List[str] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):  # noqa: ANN001 - torch protocol
        kwargs = kwargs or {}
        if self.depth > 0:
            return func(*args, **kwargs)
        name = _call_name(func)
        canonical = _OPERATOR_ALIASES.get(name, name)
        if name not in _METADATA_CALLS and name != "torch.Tensor.__torch_function__":
            if name not in self.converted and canonical not in self.converted:
                self.problems.append(f"no converter: {name}")
            elif name in _ELEMENTWISE and canonical not in self.mixed_dtype_ok:
                operands = list(args[1:]) if name == "torch.where" else list(args) + list(kwargs.values())
                dtypes = {a.dtype for a in operands if isinstance(a, torch.Tensor)}
                if len(dtypes) > 1:
                    kinds = ", ".join(sorted(str(d) for d in dtypes))
                    self.problems.append(f"mixed dtypes ({kinds}) in {name}")
        self.depth += 1
        try:
            return func(*args, **kwargs)
        finally:
            self.depth -= 1


def unconverted_calls(
    module: nn.Module,
    example_inputs: Sequence[torch.Tensor],
    extra_converters: Sequence[str] = (),
    mixed_dtype_converters: Sequence[str] = (),
) -> List[str]:
    """Sorted distinct problems torch2trt would hit converting ``module`` on ``example_inputs``.

    ``extra_converters`` are dotted names of converters registered in addition to torch2trt's own
    (module types as ``torch.nn.Name``, functions as ``torch.Tensor.amax`` etc.);
    ``mixed_dtype_converters`` name elementwise converters that accept operands of different dtypes.
    """
    converted = TORCH2TRT_FUNCTIONS | TORCH2TRT_MODULES | frozenset(extra_converters)
    recorder = _Recorder(converted, frozenset(mixed_dtype_converters))
    handles = []

    def enter(mod: nn.Module, inputs: object) -> None:
        recorder.depth += 1

    def leave(mod: nn.Module, inputs: object, output: object) -> None:
        recorder.depth -= 1

    for sub in module.modules():
        if _module_name(sub) in converted:
            handles.append(sub.register_forward_pre_hook(enter))
            handles.append(sub.register_forward_hook(leave))
    try:
        with torch.no_grad(), recorder:
            module(*example_inputs)
    finally:
        for handle in handles:
            handle.remove()
    seen: Set[str] = set(recorder.problems)
    return sorted(seen)

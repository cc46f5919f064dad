"""torch2trt converters for the calls our models make that torch2trt v0.4.0 does not convert.

``trt_coverage.unconverted_calls`` finds these gaps on the CPU; this module closes them with the
TensorRT 8.2 network API (reduce, unary, select, elementwise, constant, concatenation, slice, shuffle,
pooling layers), in explicit-batch mode as torch2trt builds for TensorRT 8. ``register_converters()``
registers each converter with ``torch2trt.tensorrt_converter`` unless torch2trt already has one under
that name (upstream wins), and wraps the upstream elementwise multiply so that a bool operand (a
modality mask) is cast to float first: torch2trt's own converters assert equal dtypes.

Not checked without the device: these converters are written against the documented TensorRT 8.2
Python API and run only where ``torch2trt`` and ``tensorrt`` import (the Jetson), where
tests/test_runtime_parity.py builds the engine and compares it with torch eager.
"""

import importlib
import logging
from typing import Any, Callable, Dict, List, Sequence, Tuple

import numpy as np
import torch

logger = logging.getLogger(__name__)

Converter = Callable[[Any], None]


def _t2t():  # noqa: ANN202 - returns the torch2trt.torch2trt module
    # Not ``import torch2trt.torch2trt``: the package re-exports the function ``torch2trt``, which
    # shadows the submodule attribute of the same name; sys.modules holds the module itself.
    return importlib.import_module("torch2trt.torch2trt")


def _trt():  # noqa: ANN202 - returns the tensorrt module
    import tensorrt

    return tensorrt


def _const(network: Any, value: float, ndim: int) -> Any:
    """A float32 constant of shape (1,) * ndim that broadcasts against any ndim-D tensor."""
    shape = (1,) * ndim
    return network.add_constant(shape, np.full(shape, value, dtype=np.float32)).get_output(0)


def _bool_to_float(network: Any, tensor: Any) -> Any:
    """1.0 where ``tensor`` is true, else 0.0 (a select; TensorRT 8.2 has no bool->float cast layer)."""
    ndim = len(tensor.shape)
    return network.add_select(tensor, _const(network, 1.0, ndim), _const(network, 0.0, ndim)).get_output(0)


def _float_to_bool(network: Any, tensor: Any) -> Any:
    """``tensor != 0`` as a bool tensor."""
    trt = _trt()
    ndim = len(tensor.shape)
    equal = network.add_elementwise(tensor, _const(network, 0.0, ndim), trt.ElementWiseOperation.EQUAL)
    return network.add_unary(equal.get_output(0), trt.UnaryOperation.NOT).get_output(0)


def _trt_tensor(ctx: Any, value: Any, ndim: int) -> Any:
    """The TensorRT tensor of a torch tensor (a constant if it has none) or of a Python scalar."""
    network = ctx.network
    if isinstance(value, torch.Tensor):
        if not hasattr(value, "_trt"):
            value._trt = network.add_constant(tuple(value.shape), value.detach().cpu().numpy()).get_output(0)
        tensor = value._trt
        return _t2t().broadcast_trt_tensors(network, [tensor], ndim)[0]
    return _const(network, float(value), ndim)


def _dims(dim: Any, ndim: int) -> Tuple[int, ...]:
    dims = tuple(dim) if isinstance(dim, (tuple, list)) else (dim,)
    return tuple(int(d) % ndim for d in dims)


def convert_amax(ctx: Any) -> None:
    """``torch.amax`` / ``Tensor.amax``: a MAX reduce over ``dim``."""
    t2t, trt = _t2t(), _trt()
    x = ctx.method_args[0]
    dims = _dims(t2t.get_arg(ctx, "dim", 1, tuple(range(x.ndim))), x.ndim)
    keepdim = bool(t2t.get_arg(ctx, "keepdim", 2, False))
    layer = ctx.network.add_reduce(x._trt, trt.ReduceOperation.MAX, t2t.torch_dim_to_trt_axes(dims), keepdim)
    ctx.method_return._trt = layer.get_output(0)


def convert_invert(ctx: Any) -> None:
    """``~mask`` on a bool tensor: logical NOT."""
    x = ctx.method_args[0]
    ctx.method_return._trt = ctx.network.add_unary(x._trt, _trt().UnaryOperation.NOT).get_output(0)


def convert_masked_fill(ctx: Any) -> None:
    """``x.masked_fill(mask, value)``: select(mask, value, x)."""
    x, mask, value = ctx.method_args[0], ctx.method_args[1], _t2t().get_arg(ctx, "value", 2, 0.0)
    ndim = x.ndim
    layer = ctx.network.add_select(_trt_tensor(ctx, mask, ndim), _trt_tensor(ctx, value, ndim), x._trt)
    ctx.method_return._trt = layer.get_output(0)


def convert_isfinite(ctx: Any) -> None:
    """``torch.isfinite(x)``: ``x - x == 0`` (inf - inf and NaN - NaN are NaN)."""
    trt = _trt()
    x = ctx.method_args[0]
    network = ctx.network
    diff = network.add_elementwise(x._trt, x._trt, trt.ElementWiseOperation.SUB).get_output(0)
    equal = network.add_elementwise(diff, _const(network, 0.0, x.ndim), trt.ElementWiseOperation.EQUAL)
    ctx.method_return._trt = equal.get_output(0)


def convert_where(ctx: Any) -> None:
    """``torch.where(cond, a, b)`` (tensors or scalars): a select layer."""
    cond, a, b = ctx.method_args[:3]
    ndim = ctx.method_return.ndim
    layer = ctx.network.add_select(
        _trt_tensor(ctx, cond, ndim), _trt_tensor(ctx, a, ndim), _trt_tensor(ctx, b, ndim)
    )
    ctx.method_return._trt = layer.get_output(0)


def convert_like_constant(ctx: Any) -> None:
    """``torch.zeros_like`` and friends: the (static-shape) result as a constant."""
    out = ctx.method_return
    out._trt = ctx.network.add_constant(tuple(out.shape), out.detach().cpu().numpy()).get_output(0)


def convert_diff(ctx: Any) -> None:
    """``torch.diff(x, n=1, dim, prepend, append)``: concat, two slices, subtract (n = 1 only)."""
    t2t, trt = _t2t(), _trt()
    x = ctx.method_args[0]
    if int(t2t.get_arg(ctx, "n", 1, 1)) != 1:
        raise NotImplementedError("torch.diff converter supports n=1 only")
    dim = _dims(t2t.get_arg(ctx, "dim", 2, -1), x.ndim)[0]
    parts = [t2t.get_arg(ctx, "prepend", 3, None), x, t2t.get_arg(ctx, "append", 4, None)]
    network = ctx.network
    tensors = [_trt_tensor(ctx, p, x.ndim) for p in parts if p is not None]
    joined = network.add_concatenation(tensors)
    joined.axis = dim
    full = joined.get_output(0)
    out_shape = tuple(ctx.method_return.shape)
    start_hi = tuple(1 if d == dim else 0 for d in range(x.ndim))
    ones = (1,) * x.ndim
    upper = network.add_slice(full, start_hi, out_shape, ones).get_output(0)
    lower = network.add_slice(full, (0,) * x.ndim, out_shape, ones).get_output(0)
    ctx.method_return._trt = network.add_elementwise(upper, lower, trt.ElementWiseOperation.SUB).get_output(0)


def convert_to(ctx: Any) -> None:
    """``Tensor.to(...)``: identity between float types, bool<->float casts; other dtypes unsupported."""
    x, out = ctx.method_args[0], ctx.method_return
    network = ctx.network
    if out.dtype == x.dtype or (out.is_floating_point() and x.is_floating_point()):
        out._trt = x._trt
    elif out.dtype == torch.bool and x.is_floating_point():
        out._trt = _float_to_bool(network, x._trt)
    elif x.dtype == torch.bool and out.is_floating_point():
        out._trt = _bool_to_float(network, x._trt)
    else:
        raise NotImplementedError(f"Tensor.to from {x.dtype} to {out.dtype} has no TensorRT converter")


def convert_clamp_min(ctx: Any) -> None:
    """``Tensor.clamp_min(v)``: elementwise MAX with a constant."""
    x = ctx.method_args[0]
    value = _t2t().get_arg(ctx, "min", 1, None)
    layer = ctx.network.add_elementwise(
        x._trt, _trt_tensor(ctx, value, x.ndim), _trt().ElementWiseOperation.MAX
    )
    ctx.method_return._trt = layer.get_output(0)


def convert_expand_as(ctx: Any) -> None:
    """``x.expand_as(other)``: a slice with stride 0 along the broadcast dimensions."""
    x, out = ctx.method_args[0], ctx.method_return
    tensor = _trt_tensor(ctx, x, out.ndim)
    in_shape = tuple(tensor.shape)
    stride = tuple(0 if i == 1 and o != 1 else 1 for i, o in zip(in_shape, out.shape))
    layer = ctx.network.add_slice(tensor, (0,) * out.ndim, tuple(out.shape), stride)
    out._trt = layer.get_output(0)


def convert_max_pool1d(ctx: Any) -> None:
    """``F.max_pool1d`` on (N, C, T): reshape to (N, C, T, 1), 2-D max pooling (k, 1), reshape back."""
    t2t, trt = _t2t(), _trt()
    x, out = ctx.method_args[0], ctx.method_return
    kernel = _first(t2t.get_arg(ctx, "kernel_size", 1, None))
    stride = _first(t2t.get_arg(ctx, "stride", 2, None) or kernel)
    padding = _first(t2t.get_arg(ctx, "padding", 3, 0))
    if _first(t2t.get_arg(ctx, "dilation", 4, 1)) != 1:
        raise NotImplementedError("max_pool1d converter supports dilation 1 only")
    network = ctx.network
    to_2d = network.add_shuffle(x._trt)
    to_2d.reshape_dims = tuple(x.shape) + (1,)
    pool = network.add_pooling_nd(to_2d.get_output(0), trt.PoolingType.MAX, (kernel, 1))
    pool.stride_nd = (stride, 1)
    pool.padding_nd = (padding, 0)
    if t2t.get_arg(ctx, "ceil_mode", 5, False):
        pool.padding_mode = trt.PaddingMode.EXPLICIT_ROUND_UP
    back = network.add_shuffle(pool.get_output(0))
    back.reshape_dims = tuple(out.shape)
    out._trt = back.get_output(0)


def _first(value: Any) -> int:
    return int(value[0]) if isinstance(value, (tuple, list)) else int(value)


def _mixed_dtype_elementwise(upstream: Converter) -> Converter:
    """Wrap an upstream elementwise converter so bool tensor operands are cast to float first."""

    def convert(ctx: Any) -> None:
        args: List[Any] = list(ctx.method_args)
        for index, arg in enumerate(args):
            if isinstance(arg, torch.Tensor) and arg.dtype == torch.bool:
                as_float = arg.to(torch.float32)  # runs under torch2trt's lock: not converted itself
                as_float._trt = _bool_to_float(ctx.network, _trt_tensor(ctx, arg, arg.ndim))
                args[index] = as_float
        ctx.method_args = tuple(args)
        upstream(ctx)

    return convert


# Dotted names torch2trt patches -> our converter (used where torch2trt v0.4.0 has none).
OUR_CONVERTERS: Dict[str, Converter] = {
    "torch.amax": convert_amax,
    "torch.Tensor.amax": convert_amax,
    "torch.Tensor.__invert__": convert_invert,
    "torch.Tensor.masked_fill": convert_masked_fill,
    "torch.isfinite": convert_isfinite,
    "torch.where": convert_where,
    "torch.zeros_like": convert_like_constant,
    "torch.ones_like": convert_like_constant,
    "torch.diff": convert_diff,
    "torch.Tensor.to": convert_to,
    "torch.Tensor.clamp_min": convert_clamp_min,
    "torch.Tensor.expand_as": convert_expand_as,
    "torch.nn.functional.max_pool1d": convert_max_pool1d,
}
# Upstream elementwise converters we wrap to accept a bool operand.
MIXED_DTYPE_NAMES: Sequence[str] = ("torch.Tensor.__mul__", "torch.Tensor.__rmul__", "torch.mul")


def register_converters() -> List[str]:
    """Register our converters with the imported torch2trt; returns the names registered."""
    t2t = _t2t()
    registered: List[str] = []
    for name, converter in OUR_CONVERTERS.items():
        if name in t2t.CONVERTERS:
            continue
        t2t.tensorrt_converter(name)(converter)
        registered.append(name)
    for name in MIXED_DTYPE_NAMES:
        entry = t2t.CONVERTERS.get(name)
        if entry is None or getattr(entry["converter"], "_cosmo_mixed_dtype", False):
            continue
        wrapped = _mixed_dtype_elementwise(entry["converter"])
        wrapped._cosmo_mixed_dtype = True
        t2t.tensorrt_converter(name)(wrapped)
        registered.append(name)
    logger.info("registered torch2trt converters: %s", ", ".join(registered) or "(none needed)")
    return registered

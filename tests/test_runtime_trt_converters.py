"""Our torch2trt converters, run against a small numpy emulation of the TensorRT layers they use.

The emulation encodes TensorRT's documented layer semantics (reduce axes bitmask, select, elementwise
with broadcasting, slice start/shape/stride, shuffle reshape, 2-D max pooling); it checks the
converters' axis, slice and reshape logic against torch, not the TensorRT bindings themselves.
"""

import enum
import sys
import types
from typing import Any, List

import numpy as np
import pytest
import torch

from cosmo_edge.runtime import trt_converters

ReduceOperation = enum.Enum("ReduceOperation", "MAX")
UnaryOperation = enum.Enum("UnaryOperation", "NOT")
ElementWiseOperation = enum.Enum("ElementWiseOperation", "SUB EQUAL MAX PROD")
PoolingType = enum.Enum("PoolingType", "MAX")
PaddingMode = enum.Enum("PaddingMode", "EXPLICIT_ROUND_UP")


class Tensor:
    def __init__(self, value: np.ndarray) -> None:
        self.value = np.asarray(value)

    @property
    def shape(self):
        return self.value.shape


class Layer:
    """Evaluated on get_output, so attributes set after creation (axis, reshape_dims...) apply."""

    def __init__(self, fn) -> None:
        self._fn = fn

    def get_output(self, index: int) -> Tensor:
        return Tensor(self._fn(self))


def _elementwise(a, b, op):
    with np.errstate(invalid="ignore"):  # inf - inf is NaN on purpose (isfinite)
        return _ELEMENTWISE[op](a, b)


_ELEMENTWISE = {
    ElementWiseOperation.SUB: np.subtract,
    ElementWiseOperation.EQUAL: np.equal,
    ElementWiseOperation.MAX: np.maximum,
    ElementWiseOperation.PROD: np.multiply,
}


def _pool_max(x, window, stride, padding, ceil):
    n, c, h, w = x.shape
    padded = np.pad(x, ((0, 0), (0, 0), (padding[0],) * 2, (padding[1],) * 2), constant_values=-np.inf)
    rounding = np.ceil if ceil else np.floor
    out_h = int(rounding((h + 2 * padding[0] - window[0]) / stride[0])) + 1
    out_w = int(rounding((w + 2 * padding[1] - window[1]) / stride[1])) + 1
    out = np.full((n, c, out_h, out_w), -np.inf, dtype=x.dtype)
    for i in range(out_h):
        for j in range(out_w):
            top, left = i * stride[0], j * stride[1]
            patch = padded[:, :, top : top + window[0], left : left + window[1]]
            out[:, :, i, j] = patch.reshape(n, c, -1).max(axis=2)
    return out


class Network:
    def add_constant(self, shape, weights):
        return Layer(lambda layer: np.asarray(weights).reshape(shape))

    def add_reduce(self, x, op, axes, keep_dims):
        dims = tuple(d for d in range(len(x.shape)) if axes & (1 << d))
        return Layer(lambda layer: np.max(x.value, axis=dims, keepdims=keep_dims))

    def add_unary(self, x, op):
        return Layer(lambda layer: np.logical_not(x.value))

    def add_select(self, cond, a, b):
        return Layer(lambda layer: np.where(cond.value.astype(bool), a.value, b.value))

    def add_elementwise(self, a, b, op):
        return Layer(lambda layer: _elementwise(a.value, b.value, op))

    def add_concatenation(self, tensors):
        layer = Layer(lambda layer: np.concatenate([t.value for t in tensors], axis=layer.axis))
        layer.axis = 0
        return layer

    def add_slice(self, x, start, shape, stride):
        def run(layer):
            index = np.ix_(*[s + st * np.arange(n) for s, n, st in zip(start, shape, stride)])
            return x.value[index]

        return Layer(run)

    def add_shuffle(self, x):
        return Layer(lambda layer: x.value.reshape(layer.reshape_dims))

    def add_pooling_nd(self, x, kind, window):
        def run(layer):
            ceil = getattr(layer, "padding_mode", None) == PaddingMode.EXPLICIT_ROUND_UP
            return _pool_max(x.value, window, layer.stride_nd, layer.padding_nd, ceil)

        return Layer(run)


def _get_arg(ctx, name, pos, default):
    if name in ctx.method_kwargs:
        return ctx.method_kwargs[name]
    return ctx.method_args[pos] if len(ctx.method_args) > pos else default


def _broadcast(network, tensors: List[Tensor], ndim: int) -> List[Tensor]:
    return [Tensor(t.value.reshape((1,) * (ndim - len(t.shape)) + t.shape)) for t in tensors]


@pytest.fixture
def emulated(monkeypatch):
    trt = types.ModuleType("tensorrt")
    for cls in (ReduceOperation, UnaryOperation, ElementWiseOperation, PoolingType, PaddingMode):
        setattr(trt, cls.__name__, cls)
    t2t = types.ModuleType("torch2trt.torch2trt")
    t2t.get_arg = _get_arg
    t2t.torch_dim_to_trt_axes = lambda dims: sum(1 << d for d in dims)
    t2t.broadcast_trt_tensors = _broadcast
    monkeypatch.setitem(sys.modules, "tensorrt", trt)
    monkeypatch.setitem(sys.modules, "torch2trt.torch2trt", t2t)


def _convert(converter, fn, args: List[Any], kwargs=None) -> np.ndarray:
    """Run ``fn`` in torch, give tensor args TensorRT stand-ins, convert, return the emulated output."""
    kwargs = kwargs or {}
    with torch.no_grad():
        out = fn(*args, **kwargs)
    for arg in list(args) + list(kwargs.values()):
        if isinstance(arg, torch.Tensor):
            arg._trt = Tensor(arg.numpy())
    ctx = types.SimpleNamespace(
        network=Network(), method_args=tuple(args), method_kwargs=kwargs, method_return=out
    )
    converter(ctx)
    got = out._trt.value
    np.testing.assert_array_equal(got.astype(np.float64), out.numpy().astype(np.float64))
    return got


def test_reductions_and_logic(emulated) -> None:
    x = torch.randn(2, 3, 4)
    _convert(trt_converters.convert_amax, torch.Tensor.amax, [x], {"dim": -1, "keepdim": True})
    _convert(trt_converters.convert_amax, torch.amax, [x, (0, 2)])
    mask = x > 0
    _convert(trt_converters.convert_invert, torch.Tensor.__invert__, [mask])
    _convert(trt_converters.convert_masked_fill, torch.Tensor.masked_fill, [x, mask, float("-inf")])
    y = x.clone()
    y[0, 1, 2], y[1, 0, 0] = float("inf"), float("nan")
    _convert(trt_converters.convert_isfinite, torch.isfinite, [y])
    _convert(trt_converters.convert_where, torch.where, [mask, x, torch.zeros_like(x)])
    _convert(trt_converters.convert_where, torch.where, [mask[:, :1], x, 0.5])
    _convert(trt_converters.convert_clamp_min, torch.Tensor.clamp_min, [x, 0.1])


def test_shape_ops(emulated) -> None:
    x = torch.randn(2, 5, 3)
    _convert(trt_converters.convert_diff, torch.diff, [x], {"dim": 1, "prepend": x[:, :1]})
    _convert(trt_converters.convert_diff, torch.diff, [x], {"dim": -1})
    q = torch.rand(1, 4)
    _convert(trt_converters.convert_expand_as, torch.Tensor.expand_as, [q, torch.zeros(3, 4)])
    _convert(trt_converters.convert_like_constant, torch.zeros_like, [x])
    seq, pool = torch.randn(2, 4, 9), torch.nn.functional.max_pool1d
    _convert(trt_converters.convert_max_pool1d, pool, [seq, 2])
    _convert(trt_converters.convert_max_pool1d, pool, [seq, 3], {"stride": 2, "padding": 1})
    _convert(trt_converters.convert_max_pool1d, pool, [seq, 2], {"ceil_mode": True})


def test_casts(emulated) -> None:
    present = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    as_bool = _convert(trt_converters.convert_to, torch.Tensor.to, [present], {"dtype": torch.bool})
    assert as_bool.dtype == bool
    _convert(trt_converters.convert_to, torch.Tensor.to, [present > 0], {"dtype": torch.float32})
    with pytest.raises(NotImplementedError):
        _convert(trt_converters.convert_to, torch.Tensor.to, [present], {"dtype": torch.int64})


def test_mixed_dtype_multiply_casts_the_bool_operand(emulated) -> None:
    seen = {}

    def upstream(ctx):
        a, b = ctx.method_args
        seen["dtypes"] = (a.dtype, b.dtype)
        ctx.method_return._trt = Tensor(a._trt.value * b._trt.value)

    weights, mask = torch.rand(2, 3), torch.tensor([[True, False, True], [False, True, True]])
    got = _convert(trt_converters._mixed_dtype_elementwise(upstream), torch.Tensor.__mul__, [weights, mask])
    assert seen["dtypes"] == (torch.float32, torch.float32) and got.dtype == np.float32

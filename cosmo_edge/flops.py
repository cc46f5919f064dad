"""FLOPs and bytes per sample of a torch model, and this machine's measured peak (the physical limit).

``count_flops(model, *inputs)`` runs one forward pass in eval mode with forward hooks on the leaf
modules and counts, per sample (totals divided by the batch size):

- FLOPs, a multiply-add counting as 2: ConvNd / ConvTransposeNd and Linear (2 x MACs, + 1 per output
  for a bias); GRU / LSTM / RNN (per step, layer and direction: 2 x gates x H x (I + H) for the
  matmuls, 2 x gates x H for the biases, and 11 H (GRU), 13 H (LSTM) or 2 H (RNN) elementwise);
  BatchNorm 2 per element (scale and shift); LayerNorm / GroupNorm / InstanceNorm 5 per element;
  pooling one per window element read (max and average), adaptive pooling one per input element;
  activations 1 per element, Softmax 3 per element;
- bytes: weights (every parameter and buffer once), activations (each counted layer's output, a
  write-traffic proxy) and the inputs.

Hooks only see modules: tensor functions called inside ``forward`` (``torch.cat``, ``mean``, ``tanh``)
are not counted, so the FLOPs are a lower bound; leaf modules without a rule are listed in
``uncounted``. Only forward hooks are used (torch 1.10 has them), never ``FlopCounterMode``.

``measure_peak_flops`` times a large square matmul on this machine in the same run, and
``measure_bandwidth`` a large copy, so a benchmark can print the achieved fraction of peak and the
roofline bound ``min(peak, intensity x bandwidth)``.
"""

import logging
import time
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence

logger = logging.getLogger(__name__)

_CONV = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_CONV_T = (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)
_BN = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)
_NORM = (nn.LayerNorm, nn.GroupNorm, nn.InstanceNorm1d, nn.InstanceNorm2d, nn.InstanceNorm3d)
_POOL = (nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d, nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d)
_ADAPTIVE = (
    nn.AdaptiveAvgPool1d,
    nn.AdaptiveAvgPool2d,
    nn.AdaptiveAvgPool3d,
    nn.AdaptiveMaxPool1d,
    nn.AdaptiveMaxPool2d,
    nn.AdaptiveMaxPool3d,
)
_ACT = (
    nn.ReLU,
    nn.ReLU6,
    nn.LeakyReLU,
    nn.PReLU,
    nn.ELU,
    nn.GELU,
    nn.SiLU,
    nn.Sigmoid,
    nn.Tanh,
    nn.Hardswish,
    nn.Hardsigmoid,
    nn.Hardtanh,
)
_FREE = (nn.Dropout, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout, nn.Identity, nn.Flatten, nn.Unflatten)
_RNN_GATES = {"GRU": 3, "LSTM": 4, "RNN_TANH": 1, "RNN_RELU": 1}
_RNN_ELEMENTWISE = {"GRU": 11, "LSTM": 13, "RNN_TANH": 2, "RNN_RELU": 2}


@dataclass
class LayerCount:
    """FLOPs and output bytes of one leaf module, summed over its calls (whole batch)."""

    name: str
    kind: str
    flops: int = 0
    output_bytes: int = 0
    calls: int = 0


@dataclass
class FlopReport:
    """Per-sample counts of one forward pass; see the module docstring for the conventions."""

    batch_size: int
    flops_per_sample: float
    weight_bytes: int
    activation_bytes_per_sample: float
    input_bytes_per_sample: float
    parameters: int
    layers: List[LayerCount] = field(default_factory=list)
    uncounted: List[str] = field(default_factory=list)

    @property
    def bytes_per_sample(self) -> float:
        """Weights + activations + inputs: the bytes one sample moves at least once (batch of one)."""
        return self.weight_bytes + self.activation_bytes_per_sample + self.input_bytes_per_sample

    @property
    def intensity_flops_per_byte(self) -> float:
        """Arithmetic intensity at batch size one (FLOPs / bytes)."""
        return self.flops_per_sample / max(self.bytes_per_sample, 1.0)

    def by_prefix(self, depth: int = 2) -> Dict[str, float]:
        """FLOPs per sample grouped by the first ``depth`` parts of the module names."""
        groups: Dict[str, float] = {}
        for layer in self.layers:
            key = ".".join(layer.name.split(".")[:depth]) or "(root)"
            groups[key] = groups.get(key, 0.0) + layer.flops / self.batch_size
        return groups

    def to_dict(self, depth: int = 3) -> Dict[str, Any]:
        """JSON-able summary (per-layer detail grouped by ``depth`` name parts)."""
        return {
            "flops_per_sample": self.flops_per_sample,
            "weight_bytes": self.weight_bytes,
            "activation_bytes_per_sample": self.activation_bytes_per_sample,
            "input_bytes_per_sample": self.input_bytes_per_sample,
            "intensity_flops_per_byte": self.intensity_flops_per_byte,
            "parameters": self.parameters,
            "flops_by_module": self.by_prefix(depth),
            "uncounted_modules": self.uncounted,
            "convention": "multiply-add = 2 FLOPs; module hooks only (tensor functions not counted)",
        }


def _numel(shape: Any) -> int:
    total = 1
    for size in shape:
        total *= int(size)
    return total


def _rnn_flops(module: nn.RNNBase, inputs: Tuple[Any, ...]) -> int:
    """FLOPs of a GRU / LSTM / RNN call from its mode, sizes and the number of (step, sequence) rows."""
    x = inputs[0]
    if isinstance(x, PackedSequence):
        rows = int(x.data.shape[0])
    elif x.dim() == 2:  # unbatched (T, I)
        rows = int(x.shape[0])
    else:
        rows = int(x.shape[0]) * int(x.shape[1])
    gates = _RNN_GATES[module.mode]
    hidden = int(module.hidden_size)
    directions = 2 if module.bidirectional else 1
    total = 0
    for layer in range(int(module.num_layers)):
        in_size = int(module.input_size) if layer == 0 else hidden * directions
        per_row = 2 * gates * hidden * (in_size + hidden) + _RNN_ELEMENTWISE[module.mode] * hidden
        if module.bias:
            per_row += 2 * gates * hidden
        total += per_row * rows * directions
    return total


def _first_tensor(value: Any) -> Optional[torch.Tensor]:
    """The first tensor in a (possibly nested) output: tensors, tuples, lists, dicts, PackedSequence."""
    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, PackedSequence):
        return value.data
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, (tuple, list)):
        for item in value:
            found = _first_tensor(item)
            if found is not None:
                return found
    return None


def _tensors(value: Any) -> List[torch.Tensor]:
    """Every tensor in a nested structure of inputs."""
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, (tuple, list)):
        return [t for item in value for t in _tensors(item)]
    return []


def module_flops(module: nn.Module, inputs: Tuple[Any, ...], output: Any) -> Optional[int]:
    """FLOPs of one call of a leaf module (whole batch); None when there is no rule for its type."""
    out = _first_tensor(output)
    if isinstance(module, nn.RNNBase):
        return _rnn_flops(module, inputs)
    if out is None:
        return None
    n_out = int(out.numel())
    if isinstance(module, _CONV):
        per_output = 2 * (module.in_channels // module.groups) * _numel(module.kernel_size)
        return per_output * n_out + (n_out if module.bias is not None else 0)
    if isinstance(module, _CONV_T):
        n_in = int(inputs[0].numel())
        per_input = 2 * (module.out_channels // module.groups) * _numel(module.kernel_size)
        return per_input * n_in + (n_out if module.bias is not None else 0)
    if isinstance(module, nn.Linear):
        rows = n_out // module.out_features
        return rows * (
            2 * module.in_features * module.out_features
            + (module.out_features if module.bias is not None else 0)
        )
    if isinstance(module, _BN):
        return 2 * n_out
    if isinstance(module, _NORM):
        return 5 * n_out
    if isinstance(module, _POOL):
        kernel = module.kernel_size
        spatial_dims = int(type(module).__name__[-2])  # MaxPool2d -> 2
        kernel_elems = _numel(kernel) if isinstance(kernel, (tuple, list)) else int(kernel) ** spatial_dims
        return kernel_elems * n_out
    if isinstance(module, _ADAPTIVE):
        return int(inputs[0].numel())
    if isinstance(module, _ACT):
        return n_out
    if isinstance(module, (nn.Softmax, nn.LogSoftmax)):
        return 3 * n_out
    if isinstance(module, _FREE):
        return 0
    return None


def count_flops(
    model: nn.Module, *inputs: Any, batch_size: Optional[int] = None, **kwargs: Any
) -> FlopReport:
    """Count FLOPs and bytes per sample of ``model(*inputs, **kwargs)`` (see the module docstring).

    ``batch_size`` defaults to the first dimension of the first input tensor (pass it for
    time-first inputs). The model runs once in eval mode under ``torch.no_grad()``; its training
    flag is restored afterwards.
    """
    tensors = _tensors(list(inputs) + list(kwargs.values()))
    if not tensors or tensors[0].dim() == 0:
        raise ValueError("count_flops needs at least one batched input tensor")
    batch = int(batch_size) if batch_size is not None else int(tensors[0].shape[0])
    counts: Dict[str, LayerCount] = {}
    uncounted: Dict[str, str] = {}
    names = {module: name for name, module in model.named_modules()}

    def hook(module: nn.Module, args: Tuple[Any, ...], output: Any) -> None:
        name = names[module]
        flops = module_flops(module, args, output)
        if flops is None:
            uncounted[name] = type(module).__name__
            return
        record = counts.setdefault(name, LayerCount(name, type(module).__name__))
        record.calls += 1
        record.flops += flops
        if not isinstance(module, _FREE):
            record.output_bytes += sum(t.numel() * t.element_size() for t in _tensors(output))

    leaves = [m for m in model.modules() if not list(m.children()) or isinstance(m, nn.RNNBase)]
    handles = [m.register_forward_hook(hook) for m in leaves]
    for module in model.modules():
        if isinstance(module, nn.MultiheadAttention):
            uncounted[names[module]] = "MultiheadAttention (input projections and attention not counted)"
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(*inputs, **kwargs)
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    seen = set()
    weight_bytes = 0
    for tensor in list(model.parameters()) + list(model.buffers()):
        if id(tensor) not in seen:
            seen.add(id(tensor))
            weight_bytes += tensor.numel() * tensor.element_size()
    layers = [counts[name] for name in names.values() if name in counts]
    return FlopReport(
        batch_size=batch,
        flops_per_sample=sum(layer.flops for layer in layers) / batch,
        weight_bytes=int(weight_bytes),
        activation_bytes_per_sample=sum(layer.output_bytes for layer in layers) / batch,
        input_bytes_per_sample=sum(t.numel() * t.element_size() for t in tensors) / batch,
        parameters=int(sum(p.numel() for p in model.parameters())),
        layers=layers,
        uncounted=[f"{name} ({kind})" for name, kind in sorted(uncounted.items())],
    )


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed_repeats(step: Any, device: torch.device, min_time_s: float, max_repeats: int) -> List[float]:
    """Seconds of each call of ``step()`` (after one untimed warm-up) until ``min_time_s`` has passed."""
    step()
    _synchronize(device)
    times: List[float] = []
    started = time.perf_counter()
    while len(times) < max_repeats and (time.perf_counter() - started < min_time_s or len(times) < 3):
        t0 = time.perf_counter()
        step()
        _synchronize(device)
        times.append(time.perf_counter() - t0)
    return times


def measure_peak_flops(
    size: int = 2048,
    dtype: torch.dtype = torch.float32,
    device: str = "cpu",
    min_time_s: float = 1.0,
    threads: Optional[int] = None,
) -> Dict[str, Any]:
    """This machine's matmul throughput: two ``size`` x ``size`` matrices multiplied for ``min_time_s``.

    ``threads`` temporarily sets torch's intra-op threads (CPU). Returns best and median GFLOP/s
    (2 size^3 FLOPs per matmul), the settings and the repeat count.
    """
    dev = torch.device(device)
    previous_threads = torch.get_num_threads()
    if threads is not None and dev.type == "cpu":
        torch.set_num_threads(int(threads))
    try:
        generator = torch.Generator().manual_seed(0)
        a = torch.randn(size, size, generator=generator).to(device=dev, dtype=dtype)
        b = torch.randn(size, size, generator=generator).to(device=dev, dtype=dtype)
        out = torch.empty(size, size, device=dev, dtype=dtype)
        times = _timed_repeats(lambda: torch.matmul(a, b, out=out), dev, min_time_s, max_repeats=1000)
        used_threads = torch.get_num_threads()
    finally:
        torch.set_num_threads(previous_threads)
    flops = 2.0 * size**3
    times.sort()
    return {
        "gflops_best": flops / times[0] / 1e9,
        "gflops_median": flops / times[len(times) // 2] / 1e9,
        "size": size,
        "dtype": str(dtype).replace("torch.", ""),
        "device": str(dev),
        "threads": used_threads if dev.type == "cpu" else None,
        "repeats": len(times),
    }


def measure_bandwidth(
    megabytes: int = 256, device: str = "cpu", min_time_s: float = 0.5, threads: Optional[int] = None
) -> Dict[str, Any]:
    """Memory bandwidth of a large tensor copy (bytes read + bytes written per second), best and median."""
    dev = torch.device(device)
    previous_threads = torch.get_num_threads()
    if threads is not None and dev.type == "cpu":
        torch.set_num_threads(int(threads))
    try:
        n = megabytes * (1 << 20) // 4
        src = torch.ones(n, device=dev, dtype=torch.float32)
        dst = torch.empty_like(src)
        times = _timed_repeats(lambda: dst.copy_(src), dev, min_time_s, max_repeats=200)
        used_threads = torch.get_num_threads()
    finally:
        torch.set_num_threads(previous_threads)
    moved = 2.0 * n * 4
    times.sort()
    return {
        "gbytes_per_s_best": moved / times[0] / 1e9,
        "gbytes_per_s_median": moved / times[len(times) // 2] / 1e9,
        "megabytes": megabytes,
        "device": str(dev),
        "threads": used_threads if dev.type == "cpu" else None,
        "repeats": len(times),
    }


def roofline_gflops(
    intensity_flops_per_byte: float, peak_gflops: float, bandwidth_gbytes_per_s: float
) -> float:
    """Attainable GFLOP/s at an arithmetic intensity: ``min(peak, intensity x bandwidth)``."""
    return min(peak_gflops, intensity_flops_per_byte * bandwidth_gbytes_per_s)

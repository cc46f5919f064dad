"""ONNX export at opset 13 with constant folding, checked against TensorRT 8.2's ONNX op matrix.

Why opset 13: TensorRT 8.2 (the last TensorRT for the Jetson TX2) parses ONNX operators up to opset 13,
and ONNX Runtime 1.10+ runs opsets up to 15, so one exported file serves the CPU backend everywhere
and an on-device ``trtexec``/onnx-tensorrt build as well. The TorchScript exporter is used
(``dynamo=False`` on torch 2.x, the only exporter on torch 1.x) with ``do_constant_folding=True``; a
second folding pass (``fold_constants``) then evaluates any node whose inputs are all constants with
the ONNX reference evaluator, because the exporter leaves some constant subgraphs (e.g. a ``Mod`` on
constants inside attention) that onnx-tensorrt 8.2 cannot parse. ``graph_problems`` lists what would
stop the file from serving older runtimes: an opset above 13, a non-standard domain, or an op type
outside ``TENSORRT_82_ONNX_OPS``. ``register_onnx_symbolics`` adds exporter rules for ops the opset-13
exporter lacks (``torch.diff``, used for velocity channels) or exports with an op TensorRT 8.2 lacks
(``torch.isfinite`` becomes IsInf), written with allowed ops only.
"""

import inspect
import logging
import os
import warnings
from pathlib import Path
from typing import Any, Dict, FrozenSet, Iterable, Iterator, List, Optional, Sequence, Union

import numpy as np

logger = logging.getLogger(__name__)

OPSET = 13
# Subset of the onnx-tensorrt 8.2 operator matrix (docs/operators.md, release/8.2-GA) marked supported
# for FP32/FP16, limited to ops a CNN/MLP/attention/RNN classifier plausibly exports to. Deliberately
# absent although common in exports: Mod, NonZero, Reciprocal, IsInf, OneHot (unsupported in 8.2),
# and control flow (If, Loop, Scan), which must never appear in an inference graph of ours.
TENSORRT_82_ONNX_OPS: FrozenSet[str] = frozenset(
    """
    Abs Add And ArgMax ArgMin AveragePool BatchNormalization Cast Ceil Clip Concat Constant
    ConstantOfShape Conv ConvTranspose Cos Div Dropout Elu Equal Erf Exp Expand Flatten Floor Gather
    GatherElements Gemm GlobalAveragePool GlobalMaxPool Greater GRU HardSigmoid Identity IsNaN
    InstanceNormalization LeakyRelu Less Log LogSoftmax LSTM MatMul Max MaxPool Mean Min Mul Neg Not
    Or Pad Pow PRelu Range ReduceL2 ReduceMax ReduceMean ReduceMin ReduceProd ReduceSum
    ReduceSumSquare Relu Reshape Resize Selu Shape Sigmoid Sign Sin Slice Softmax Softplus Split Sqrt
    Squeeze Sub Sum Tanh Tile TopK Transpose Unsqueeze Where
    """.split()
)
_NEVER_FOLD = frozenset(
    {"RandomNormal", "RandomNormalLike", "RandomUniform", "RandomUniformLike", "Multinomial"}
)
PathLike = Union[str, Path]


class OnnxExportError(RuntimeError):
    """The exported graph would not serve the target runtimes; the message lists why."""


def _iter_nodes(nodes: Iterable[Any]) -> Iterator[Any]:
    """The given ONNX nodes and, recursively, the nodes of their subgraphs (If/Loop/Scan bodies)."""
    import onnx

    for node in nodes:
        yield node
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.GRAPH:
                yield from _iter_nodes(attr.g.node)
            elif attr.type == onnx.AttributeProto.GRAPHS:
                for sub in attr.graphs:
                    yield from _iter_nodes(sub.node)


def graph_problems(
    model: Any, max_opset: int = OPSET, allowed_ops: FrozenSet[str] = TENSORRT_82_ONNX_OPS
) -> List[str]:
    """Reasons an ONNX model would not serve onnx-tensorrt 8.2 / old ONNX Runtime; empty when fine."""
    problems: List[str] = []
    for opset in model.opset_import:
        if opset.domain in ("", "ai.onnx"):
            if opset.version > max_opset:
                problems.append(f"opset {opset.version} > {max_opset}")
        else:
            problems.append(f"non-standard operator domain {opset.domain!r}")
    counts: Dict[str, int] = {}
    for node in _iter_nodes(model.graph.node):
        if node.domain not in ("", "ai.onnx") or node.op_type not in allowed_ops:
            key = node.op_type if node.domain in ("", "ai.onnx") else f"{node.domain}::{node.op_type}"
            counts[key] = counts.get(key, 0) + 1
    problems.extend(f"op {op} (x{n}) not in the TensorRT 8.2 allow-list" for op, n in sorted(counts.items()))
    return problems


def fold_constants(model: Any, opset: int = OPSET) -> int:
    """Replace every node whose inputs are all constants by initializers, in place; returns the count.

    Nodes are visited in graph (topological) order, so chains of constant nodes fold completely.
    Outputs that are graph outputs and random ops are left alone.
    """
    from onnx import numpy_helper
    from onnx.reference import ReferenceEvaluator

    graph = model.graph
    constants: Dict[str, np.ndarray] = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    graph_outputs = {out.name for out in graph.output}
    kept, new_inits, folded = [], [], 0
    for node in graph.node:
        has_subgraph = any(attr.g.node or attr.graphs for attr in node.attribute)
        inputs = [name for name in node.input if name]
        foldable = (
            node.domain in ("", "ai.onnx")
            and node.op_type not in _NEVER_FOLD
            and not has_subgraph
            and all(name in constants for name in inputs)
            and not any(out in graph_outputs for out in node.output)
        )
        if not foldable:
            kept.append(node)
            continue
        evaluator = ReferenceEvaluator(node, opsets={"": opset})
        values = evaluator.run(None, {name: constants[name] for name in inputs})
        for name, value in zip(node.output, values):
            value = np.asarray(value)
            constants[name] = value
            new_inits.append(numpy_helper.from_array(value, name))
        folded += 1
    if folded:
        used = {name for node in _iter_nodes(kept) for name in node.input} | graph_outputs
        inits = [init for init in list(graph.initializer) + new_inits if init.name in used]
        del graph.node[:]
        graph.node.extend(kept)
        del graph.initializer[:]
        graph.initializer.extend(inits)
    return folded


def _diff_symbolic(g: Any, self: Any, n: int, dim: int, prepend: Any, append: Any) -> Any:
    """ONNX for ``torch.diff`` (n = 1): Concat(prepend, x, append), then Slice[1:] - Slice[:-1]."""
    import torch
    from torch.onnx import symbolic_helper

    if n != 1:
        return symbolic_helper._unimplemented("diff", "n != 1")
    parts = [p for p in (prepend, self, append) if not symbolic_helper._is_none(p)]
    full = g.op("Concat", *parts, axis_i=dim) if len(parts) > 1 else self

    def const(value: int) -> Any:
        return g.op("Constant", value_t=torch.tensor([value], dtype=torch.int64))

    upper = g.op("Slice", full, const(1), const(2**62), const(dim))
    lower = g.op("Slice", full, const(0), const(-1), const(dim))
    return g.op("Sub", upper, lower)


def _isfinite_symbolic(g: Any, self: Any) -> Any:
    """ONNX for ``torch.isfinite`` without IsInf (unsupported by TensorRT 8.2): ``x - x == 0``."""
    import torch

    zero = g.op("Constant", value_t=torch.tensor(0.0))
    return g.op("Equal", g.op("Sub", self, self), zero)


_SYMBOLICS_REGISTERED = False


def register_onnx_symbolics() -> None:
    """Teach the TorchScript exporter ops our encoders use that it lacks at opset 13 (``aten::diff``)."""
    global _SYMBOLICS_REGISTERED
    if _SYMBOLICS_REGISTERED:
        return
    import torch
    from torch.onnx import symbolic_helper

    symbolic = symbolic_helper.parse_args("v", "i", "i", "v", "v")(_diff_symbolic)
    torch.onnx.register_custom_op_symbolic("aten::diff", symbolic, OPSET)
    torch.onnx.register_custom_op_symbolic("aten::isfinite", _isfinite_symbolic, OPSET)
    _SYMBOLICS_REGISTERED = True


def _export_kwargs() -> Dict[str, object]:
    """Keyword arguments that select the TorchScript exporter on every torch version we support."""
    if "dynamo" in inspect.signature(__import__("torch").onnx.export).parameters:
        return {"dynamo": False}
    return {}


def export_onnx(
    module: Any,
    example_inputs: Sequence[Any],
    input_names: Sequence[str],
    output_names: Sequence[str],
    path: PathLike,
    opset: int = OPSET,
    dynamic_batch: bool = True,
    allowed_ops: Optional[FrozenSet[str]] = TENSORRT_82_ONNX_OPS,
) -> Path:
    """Export ``module`` to ``path`` (temp file + rename), fold constants, check the graph.

    ``dynamic_batch`` makes dimension 0 of every input and output symbolic (``batch``). Raises
    ``OnnxExportError`` when ``graph_problems`` finds anything (pass ``allowed_ops=None`` to skip the
    op check, e.g. for a CPU-only model).
    """
    import onnx
    import torch

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    dynamic_axes = (
        {name: {0: "batch"} for name in list(input_names) + list(output_names)} if dynamic_batch else None
    )
    register_onnx_symbolics()
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # the TorchScript exporter is deliberate
            warnings.simplefilter("ignore", torch.jit.TracerWarning)  # shape checks become constants
            torch.onnx.export(
                module.eval(),
                tuple(example_inputs),
                str(tmp),
                opset_version=opset,
                do_constant_folding=True,
                input_names=list(input_names),
                output_names=list(output_names),
                dynamic_axes=dynamic_axes,
                **_export_kwargs(),
            )
        model = onnx.load(str(tmp))
        folded = fold_constants(model, opset)
        onnx.checker.check_model(model)
        problems = graph_problems(model, opset, allowed_ops) if allowed_ops is not None else []
        if problems:
            raise OnnxExportError(f"{path.name}: " + "; ".join(problems))
        onnx.save(model, str(tmp))
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    logger.info("exported %s (opset %d, %d constant nodes folded after export)", path, opset, folded)
    return path

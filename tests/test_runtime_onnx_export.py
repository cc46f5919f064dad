"""ONNX export: opset <= 13, constant folding, the TensorRT 8.2 op allow-list, exporter additions."""

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import TensorProto, helper
from runtime_models import build_artifact

from cosmo_edge.runtime.onnx_export import (
    OPSET,
    TENSORRT_82_ONNX_OPS,
    OnnxExportError,
    export_onnx,
    fold_constants,
    graph_problems,
)


def _op_types(model) -> set:
    return {node.op_type for node in model.graph.node}


def _run(path, feeds):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, feeds)[0]


def test_classifier_export_opset_ops_and_dynamic_batch(tmp_path) -> None:
    artifact = build_artifact()
    path = export_onnx(
        artifact.probability_module(),
        artifact.example_tensors(2),
        artifact.input_names(),
        ["probabilities"],
        tmp_path / "model.onnx",
    )
    model = onnx.load(str(path))
    versions = [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")]
    assert versions and max(versions) <= OPSET
    assert _op_types(model) <= TENSORRT_82_ONNX_OPS, _op_types(model) - TENSORRT_82_ONNX_OPS
    assert not {"IsInf", "Mod"} & _op_types(model)
    module = artifact.probability_module()
    for n in (1, 3):
        batch = artifact.example_batch(n, seed=n)
        expected = module(*[torch.from_numpy(batch[k]) for k in artifact.input_names()]).detach().numpy()
        np.testing.assert_allclose(_run(path, batch), expected, atol=1e-5)
    assert not list(tmp_path.glob("*.tmp"))


def _graph_with_constant_mod(opset: int = OPSET):
    """y = x + (7 mod 4), with the Mod on two Constant nodes (what the exporter leaves in attention)."""
    seven = helper.make_node(
        "Constant", [], ["seven"], value=helper.make_tensor("s", TensorProto.FLOAT, [1], [7.0])
    )
    four = helper.make_node(
        "Constant", [], ["four"], value=helper.make_tensor("f", TensorProto.FLOAT, [1], [4.0])
    )
    mod = helper.make_node("Mod", ["seven", "four"], ["three"], fmod=1)
    add = helper.make_node("Add", ["x", "three"], ["y"])
    graph = helper.make_graph(
        [seven, four, mod, add],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def test_graph_problems_and_constant_folding(tmp_path) -> None:
    model = _graph_with_constant_mod()
    assert graph_problems(model) == ["op Mod (x1) not in the TensorRT 8.2 allow-list"]
    assert any("opset 14" in p for p in graph_problems(_graph_with_constant_mod(14)))
    assert fold_constants(model) == 3
    assert _op_types(model) == {"Add"} and graph_problems(model) == []
    onnx.checker.check_model(model)
    path = tmp_path / "folded.onnx"
    onnx.save(model, str(path))
    np.testing.assert_allclose(_run(path, {"x": np.array([1.0, 2.0], np.float32)}), [4.0, 5.0])


def test_attention_with_weights_exports_within_allow_list(tmp_path) -> None:
    """nn.MultiheadAttention(need_weights=True) exports at 13; folding removes its constant Mod."""

    class Attn(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.mha = torch.nn.MultiheadAttention(8, 2)  # (T, N, E): no fused fast path

        def forward(self, x):
            return self.mha(x, x, x, need_weights=True)[0]

    module = Attn().eval()
    x = torch.randn(5, 2, 8)
    path = export_onnx(module, [x], ["x"], ["y"], tmp_path / "attn.onnx", dynamic_batch=False)
    assert graph_problems(onnx.load(str(path))) == []
    np.testing.assert_allclose(_run(path, {"x": x.numpy()}), module(x).detach().numpy(), atol=1e-5)


def test_export_rejects_ops_outside_allow_list(tmp_path) -> None:
    class Inf(torch.nn.Module):
        def forward(self, x):
            return torch.isinf(x).float()

    with pytest.raises(OnnxExportError, match="IsInf"):
        export_onnx(Inf(), [torch.randn(2, 3)], ["x"], ["y"], tmp_path / "bad.onnx")
    assert not (tmp_path / "bad.onnx").exists() and not list(tmp_path.glob("*.tmp"))
    export_onnx(Inf(), [torch.randn(2, 3)], ["x"], ["y"], tmp_path / "cpu.onnx", allowed_ops=None)
    assert (tmp_path / "cpu.onnx").exists()


def test_diff_and_isfinite_symbolics(tmp_path) -> None:
    class Velocity(torch.nn.Module):
        def forward(self, x):
            d = torch.diff(x, dim=1, prepend=x[:, :1])
            return torch.where(torch.isfinite(d), d, torch.zeros_like(d))

    x = torch.randn(2, 6, 3)
    x[0, 2, 1] = float("inf")
    path = export_onnx(Velocity(), [x], ["x"], ["y"], tmp_path / "vel.onnx")
    model = onnx.load(str(path))
    assert graph_problems(model) == [] and "IsInf" not in _op_types(model)
    np.testing.assert_array_equal(_run(path, {"x": x.numpy()}), Velocity()(x).numpy())

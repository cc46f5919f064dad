"""TensorRT backend logic with a stand-in torch2trt/tensorrt (the real ones exist only on the device).

The stand-in keeps torch2trt's API (``torch2trt.torch2trt(module, inputs, fp16_mode=..., ...)``,
``TRTModule`` with ``state_dict()["engine"]`` and ``load_state_dict``) and serialises a TorchScript
trace as the "engine", so caching, keying, rebuild-on-corruption and batching are exercised for real.
"""

import io
import json
import sys
import types

import numpy as np
import pytest
import torch
from runtime_models import build_artifact

from cosmo_edge.runtime import create_backend, select_backend
from cosmo_edge.runtime.artifacts import artifact_from_module
from cosmo_edge.runtime.tensorrt_backend import TensorRTBackend
from cosmo_edge.runtime.trt_converters import MIXED_DTYPE_NAMES, OUR_CONVERTERS

# The stand-in engine is a TorchScript trace; torch 2.x flags that API as deprecated.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::torch.jit.TracerWarning")


class FakeTRTModule:
    """Stand-in for torch2trt.TRTModule: the engine bytes are a saved TorchScript trace."""

    def __init__(self, engine: bytes = b"", input_names=None, output_names=None) -> None:
        self.engine = torch.jit.load(io.BytesIO(engine)) if engine else None
        self._bytes = engine
        self.input_names, self.output_names = input_names, output_names
        self.calls = []

    def state_dict(self):
        return {
            "engine": bytearray(self._bytes),
            "input_names": self.input_names,
            "output_names": self.output_names,
        }

    def load_state_dict(self, state) -> None:
        self.__init__(bytes(state["engine"]), state["input_names"], state["output_names"])

    def __call__(self, *inputs):
        self.calls.append([tuple(t.shape) for t in inputs])
        return self.engine(*inputs)


@pytest.fixture
def fake_trt(monkeypatch):
    """Install stand-in ``tensorrt`` and ``torch2trt`` modules and a visible 'GPU'; returns a state dict."""
    state = {"builds": [], "gpu": "NVIDIA Tegra X2", "trt_version": "8.2.1.8"}
    tensorrt = types.ModuleType("tensorrt")
    tensorrt.__version__ = state["trt_version"]
    package = types.ModuleType("torch2trt")
    inner = types.ModuleType("torch2trt.torch2trt")
    inner.CONVERTERS = {"torch.Tensor.__mul__": {"converter": lambda ctx: None}}

    def tensorrt_converter(name):
        def register(fn):
            inner.CONVERTERS[name] = {"converter": fn}
            return fn

        return register

    def torch2trt(module, inputs, **kwargs):
        state["builds"].append(dict(kwargs, shapes=[tuple(t.shape) for t in inputs]))
        buffer = io.BytesIO()
        torch.jit.save(torch.jit.trace(module, tuple(inputs)), buffer)
        return FakeTRTModule(buffer.getvalue(), kwargs["input_names"], kwargs["output_names"])

    inner.tensorrt_converter = tensorrt_converter
    package.torch2trt = torch2trt  # as in torch2trt: the function shadows the submodule attribute
    package.TRTModule = FakeTRTModule
    package.__version__ = "0.4.0"
    monkeypatch.setitem(sys.modules, "tensorrt", tensorrt)
    monkeypatch.setitem(sys.modules, "torch2trt", package)
    monkeypatch.setitem(sys.modules, "torch2trt.torch2trt", inner)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda index=0: state["gpu"])
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda index=0: (6, 2))
    state["converters"] = inner.CONVERTERS
    state["tensorrt"] = tensorrt
    return state


@pytest.fixture(scope="module")
def artifact():
    return build_artifact(("imu", "radar"))


def _backend(tmp_path, **kwargs) -> TensorRTBackend:
    return TensorRTBackend(cache_dir=tmp_path, device="cpu", **kwargs)


def _reference(artifact, batch):
    backend = create_backend("torch")
    backend.load(artifact)
    return backend.predict(batch)


def test_build_then_cache_hit(fake_trt, artifact, tmp_path) -> None:
    first = _backend(tmp_path)
    first.load(artifact)
    assert first.built and len(fake_trt["builds"]) == 1
    build = fake_trt["builds"][0]
    assert build["fp16_mode"] is True and build["max_batch_size"] == 1
    assert build["input_names"] == ["imu", "radar", "present"] and build["shapes"][0] == (1, 120, 6)
    engine_file, meta_file = first.engine_paths(artifact)
    meta = json.loads(meta_file.read_text())
    assert meta["model_sha256"] == artifact.sha256 and meta["gpu_name"] == "NVIDIA Tegra X2"
    assert meta["compute_capability"] == "6.2" and meta["precision"] == "fp16"
    assert meta["tensorrt_version"] == "8.2.1.8" and meta["torch2trt_version"] == "0.4.0"
    assert meta["input_shapes"][1] == ["radar", [1, 20, 64, 4]]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([engine_file.name, meta_file.name])

    second = _backend(tmp_path)
    second.load(artifact)
    assert not second.built and len(fake_trt["builds"]) == 1
    batch = artifact.example_batch(3, seed=4)
    np.testing.assert_allclose(second.predict(batch), _reference(artifact, batch), atol=1e-6)


def test_every_key_part_invalidates_the_engine(fake_trt, artifact, tmp_path) -> None:
    _backend(tmp_path).load(artifact)
    paths = {_backend(tmp_path).engine_paths(artifact)[0]}
    changes = [
        lambda: fake_trt.update(gpu="Orin"),
        lambda: setattr(fake_trt["tensorrt"], "__version__", "8.5.2"),
        lambda: setattr(sys.modules["torch2trt"], "__version__", "0.5.0"),
    ]
    for change in changes:
        change()
        paths.add(_backend(tmp_path).engine_paths(artifact)[0])
    paths.add(_backend(tmp_path, fp16=False).engine_paths(artifact)[0])
    paths.add(_backend(tmp_path, max_batch_size=4).engine_paths(artifact)[0])
    retrained = build_artifact(("imu", "radar"), seed=1)
    paths.add(_backend(tmp_path).engine_paths(retrained)[0])
    assert len(paths) == 7
    builds = len(fake_trt["builds"])
    _backend(tmp_path).load(retrained)
    assert len(fake_trt["builds"]) == builds + 1


def test_corrupt_engine_is_deleted_and_rebuilt(fake_trt, artifact, tmp_path, caplog) -> None:
    _backend(tmp_path).load(artifact)
    engine_file, _ = _backend(tmp_path).engine_paths(artifact)
    engine_file.write_bytes(b"truncated")
    backend = _backend(tmp_path)
    backend.load(artifact)
    assert backend.built and len(fake_trt["builds"]) == 2 and "building again" in caplog.text
    batch = artifact.example_batch(2, seed=5)
    np.testing.assert_allclose(backend.predict(batch), _reference(artifact, batch), atol=1e-6)


def test_interrupted_write_leaves_no_complete_engine(fake_trt, artifact, tmp_path, monkeypatch) -> None:
    import cosmo_edge.runtime.tensorrt_backend as trt_backend

    real_replace = trt_backend.os.replace

    def crash_on_meta(src, dst):
        if str(dst).endswith(".json"):
            raise OSError("power cut")
        real_replace(src, dst)

    monkeypatch.setattr(trt_backend.os, "replace", crash_on_meta)
    with pytest.raises(OSError):
        _backend(tmp_path).load(artifact)
    monkeypatch.setattr(trt_backend.os, "replace", real_replace)
    backend = _backend(tmp_path)
    assert not backend.is_cached(artifact)
    backend.load(artifact)
    assert backend.built and backend.is_cached(artifact)


def test_fixed_batch_engine_pads_and_splits(fake_trt, artifact, tmp_path) -> None:
    backend = _backend(tmp_path, max_batch_size=2)
    backend.load(artifact)
    batch = artifact.example_batch(5, seed=6)
    probs = backend.predict(batch)
    assert probs.shape == (5, artifact.num_classes)
    assert all(shapes[0][0] == 2 for shapes in backend._module.calls)
    np.testing.assert_allclose(probs, _reference(artifact, batch), atol=1e-6)


def test_auto_prefers_tensorrt_when_it_imports_and_a_gpu_exists(fake_trt, tmp_path) -> None:
    assert select_backend("auto", cache_dir=tmp_path).name == "tensorrt"


def test_register_converters_fills_gaps_and_wraps_mul(fake_trt) -> None:
    from cosmo_edge.runtime.trt_converters import register_converters

    registered = register_converters()
    converters = fake_trt["converters"]
    assert set(OUR_CONVERTERS) <= set(converters)
    assert "torch.Tensor.__mul__" in registered  # upstream mul wrapped for bool operands
    assert getattr(converters["torch.Tensor.__mul__"]["converter"], "_cosmo_mixed_dtype", False)
    assert "torch.mul" not in registered  # no upstream converter to wrap in the stand-in
    assert register_converters() == []  # idempotent
    assert set(MIXED_DTYPE_NAMES) >= {"torch.Tensor.__mul__"}


def test_artifact_model_is_not_moved_or_mutated_by_a_build(fake_trt, tmp_path) -> None:
    model = build_artifact(("imu",)).model
    art = artifact_from_module(model, {"imu": (120, 6)}, ["a", "b", "c", "d", "e"])
    before = {k: v.clone() for k, v in model.state_dict().items()}
    _backend(tmp_path).load(art)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())

"""The radar point-cloud encoder: shapes, masking rules, per-frame split, export and trainability."""

import numpy as np
import pytest
import torch

from cosmo_edge.runtime.onnx_export import OPSET, export_onnx, graph_problems
from models.encoders import build_encoder
from models.radar import (
    INPUT_SHAPE,
    MIN_RANGE_M,
    RadarEncoder,
    pack_frame_points,
    valid_point_mask,
)


def _clouds(n: int, seed: int = 0, points: int = 30, shape=INPUT_SHAPE) -> torch.Tensor:
    """Random windows: ``points`` valid points per frame (range >= 0.5 m), the rest zero padding."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.zeros((n,) + tuple(shape))
    x[:, :, :points, 0:3] = torch.rand(n, shape[0], points, 3, generator=gen) * 4 + 0.5
    x[:, :, :points, 3] = torch.randn(n, shape[0], points, generator=gen)
    return x


@pytest.fixture(scope="module")
def encoder() -> RadarEncoder:
    torch.manual_seed(0)
    enc = RadarEncoder()
    with torch.no_grad():  # non-zero learned empty vector and BN statistics
        enc.empty_frame.normal_()
        for module in enc.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2.0)
    return enc.eval()


def test_registered_and_shapes(encoder: RadarEncoder) -> None:
    built = build_encoder("radar", INPUT_SHAPE, feature_dim=32)
    assert isinstance(built, RadarEncoder) and built.feature_dim == 32
    out = encoder(_clouds(3))
    assert out.shape == (3, encoder.feature_dim) and torch.isfinite(out).all()


def test_frame_split_equals_forward(encoder: RadarEncoder) -> None:
    x = _clouds(2)
    per_frame = encoder.frame_features(x)
    assert per_frame.shape == (2, INPUT_SHAPE[0], encoder.frame_dim)
    assert torch.equal(encoder.temporal(per_frame), encoder(x))


def test_frames_are_encoded_independently(encoder: RadarEncoder) -> None:
    x = _clouds(1)
    y = x.clone()
    y[0, 3, :5, 3] += 1.0  # change doppler of frame 3 only
    a, b = encoder.frame_features(x), encoder.frame_features(y)
    changed = (a - b).abs().amax(dim=2)[0]
    assert changed[3] > 0
    assert torch.all(changed[torch.arange(changed.numel()) != 3] == 0)


def test_point_order_and_padding_do_not_matter(encoder: RadarEncoder) -> None:
    x = _clouds(2, points=20)
    perm = torch.randperm(INPUT_SHAPE[1])
    assert torch.allclose(encoder(x[:, :, perm]), encoder(x), atol=1e-5)
    # a point nearer than MIN_RANGE_M is invalid: it must not change anything once zeroed by packing
    near = x.clone()
    near[:, :, 40, 0] = MIN_RANGE_M / 10
    assert not torch.allclose(encoder(near), encoder(x))  # the mask is not binary below the range
    packed = torch.stack([torch.stack([pack_frame_points(f) for f in w]) for w in near])
    assert torch.allclose(encoder(packed), encoder(x), atol=1e-6)


def test_empty_frame_uses_learned_vector(encoder: RadarEncoder) -> None:
    x = _clouds(1)
    x[0, 7] = 0.0
    per_frame = encoder.frame_features(x)
    assert torch.allclose(per_frame[0, 7], encoder.empty_frame[0, :, 0])
    assert torch.isfinite(encoder(torch.zeros((1,) + INPUT_SHAPE))).all()  # all frames empty


def test_mask_and_packing_rules() -> None:
    pts = torch.tensor([[1.0, 0.0, 0.0, 0.5], [0.0, 0.0, 0.0, 0.0], [0.001, 0.0, 0.0, 2.0]])
    assert valid_point_mask(pts).tolist() == [1.0, 0.0, pytest.approx(0.01)]
    many = torch.cat([torch.ones(100, 3) * torch.arange(1, 101)[:, None], torch.zeros(100, 1)], 1)
    packed = pack_frame_points(many, max_points=10)
    assert packed.shape == (10, 4)
    assert packed[0, 0] == 1 and packed[-1, 0] == 100  # evenly spaced, first and last kept
    few = pack_frame_points(torch.cat([pts, torch.tensor([[2.0, 1.0, 0.0, -1.0]])]), max_points=4)
    assert few[:2].tolist() == [[1.0, 0.0, 0.0, 0.5], [2.0, 1.0, 0.0, -1.0]]
    assert torch.all(few[2:] == 0)
    with pytest.raises(ValueError):
        pack_frame_points(torch.zeros(5, 3))


def test_exports_at_opset_13_within_allow_list(encoder: RadarEncoder, tmp_path) -> None:
    import onnx
    import onnxruntime as ort

    x = _clouds(2)
    path = export_onnx(encoder, [x], ["points"], ["features"], tmp_path / "radar.onnx")
    model = onnx.load(str(path))
    assert graph_problems(model) == []
    assert max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")) <= OPSET
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(None, {"points": _clouds(3, seed=1).numpy()})[0]
    np.testing.assert_allclose(got, encoder(_clouds(3, seed=1)).detach().numpy(), atol=1e-5)


def test_uses_only_torch2trt_builtin_converters(encoder: RadarEncoder) -> None:
    coverage = pytest.importorskip("cosmo_edge.runtime.trt_coverage")
    assert coverage.unconverted_calls(encoder, [_clouds(1)]) == []


@pytest.fixture
def one_thread():
    """Tiny models train fastest on one thread; oversubscribed cores make them crawl."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def test_learns_doppler_sign(one_thread) -> None:
    """Two classes that differ only in the sign of the doppler of their points become separable."""
    torch.manual_seed(0)
    shape = (6, 16, 4)
    enc = RadarEncoder(shape, point_channels=(16, 32), temporal_channels=32, feature_dim=16)
    head = torch.nn.Linear(16, 2)
    optim = torch.optim.Adam(list(enc.parameters()) + list(head.parameters()), lr=3e-3)
    x = _clouds(16, seed=2, points=8, shape=shape)
    labels = torch.arange(16) % 2
    x[..., 3] = x[..., 3].abs() * (labels[:, None, None].float() * 2 - 1) * (x[..., 0] != 0)
    for _ in range(40):
        optim.zero_grad()
        loss = torch.nn.functional.cross_entropy(head(enc(x)), labels)
        loss.backward()
        optim.step()
    enc.eval()
    accuracy = (head(enc(x)).argmax(1) == labels).float().mean().item()
    assert accuracy == 1.0

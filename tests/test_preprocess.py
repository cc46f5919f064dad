"""The shared resampling and normalisation code: shapes, exactness, units and round trips."""

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cosmo_edge.preprocess import (
    INPUT_SHAPES,
    PREPARE,
    Normalization,
    area_resize,
    nearest_frame_indices,
    prepare_depth,
    prepare_imu,
    prepare_skeleton,
    preprocess_signature,
    resample_linear,
)


def test_input_shapes_match_the_contract() -> None:
    assert INPUT_SHAPES == {"imu": (120, 6), "skeleton": (40, 20, 3), "depth": (40, 60, 80)}
    assert set(PREPARE) == set(INPUT_SHAPES)


@settings(max_examples=40, deadline=None)
@given(n_in=st.integers(2, 400), length=st.integers(2, 200), slope=st.floats(-5, 5), offset=st.floats(-3, 3))
def test_resample_linear_is_exact_on_lines_and_keeps_endpoints(
    n_in: int, length: int, slope: float, offset: float
) -> None:
    t_in = np.linspace(0.0, 1.0, n_in)
    x = np.stack([slope * t_in + offset, -slope * t_in], axis=1)
    out = resample_linear(x, length, axis=0)
    t_out = np.linspace(0.0, 1.0, length)
    assert out.shape == (length, 2)
    np.testing.assert_allclose(out[:, 0], slope * t_out + offset, atol=1e-9)
    np.testing.assert_allclose(out[[0, -1]], x[[0, -1]], atol=1e-12)


def test_resample_linear_other_axis_identity_and_single_sample() -> None:
    x = np.arange(2 * 5 * 3, dtype=np.float32).reshape(2, 5, 3)
    out = resample_linear(x, 9, axis=1)
    assert out.shape == (2, 9, 3) and out.dtype == np.float32
    np.testing.assert_allclose(out[:, ::2], x)  # 5 -> 9 puts every input sample on an output point
    same = resample_linear(x, 5, axis=1)
    np.testing.assert_array_equal(same, x)
    assert same is not x
    np.testing.assert_array_equal(resample_linear(x[:, :1], 4, axis=1), np.repeat(x[:, :1], 4, axis=1))
    assert resample_linear(np.arange(4), 7).dtype == np.float64
    with pytest.raises(ValueError):
        resample_linear(np.zeros((0, 6)), 10)


def test_nearest_frame_indices() -> None:
    idx = nearest_frame_indices(67, 40)
    assert idx[0] == 0 and idx[-1] == 66 and len(idx) == 40
    assert np.all(np.diff(idx) >= 1)  # downsampling never repeats a frame
    np.testing.assert_array_equal(nearest_frame_indices(40, 40), np.arange(40))
    np.testing.assert_array_equal(nearest_frame_indices(3, 5), [0, 1, 1, 2, 2])  # 0.5 and 1.5 round up
    assert set(nearest_frame_indices(1, 40)) == {0}


def test_prepare_imu_and_skeleton_shapes_and_values() -> None:
    rng = np.random.default_rng(0)
    raw = rng.normal(size=(177, 6))
    imu = prepare_imu(raw)
    assert imu.shape == (120, 6) and imu.dtype == np.float32
    np.testing.assert_allclose(imu[[0, -1]], raw[[0, -1]], rtol=1e-6)
    assert prepare_imu(raw[:2]).shape == (120, 6)  # the daemon's shortest window
    skel = prepare_skeleton(rng.normal(size=(67, 20, 3)))
    assert skel.shape == (40, 20, 3) and skel.dtype == np.float32
    with pytest.raises(ValueError, match=r"\(n, 6\)"):
        prepare_imu(np.zeros((100, 3)))
    with pytest.raises(ValueError, match="20, 3"):
        prepare_skeleton(np.zeros((40, 3, 20)))


def test_area_resize_integer_factor_matches_general_weights() -> None:
    rng = np.random.default_rng(1)
    frames = rng.random((3, 240, 320)).astype(np.float64)
    fast = area_resize(frames, (60, 80))
    np.testing.assert_allclose(fast[0, 0, 0], frames[0, :4, :4].mean())
    # The general path (non-integer factor) must agree where the factor happens to be whole.
    from cosmo_edge.preprocess import _area_weights

    general = np.matmul(np.matmul(_area_weights(240, 60), frames), _area_weights(320, 80).T)
    np.testing.assert_allclose(fast, general, atol=1e-12)
    odd = area_resize(frames, (70, 90))
    assert odd.shape == (3, 70, 90)
    np.testing.assert_allclose(odd.mean(axis=(1, 2)), frames.mean(axis=(1, 2)), rtol=1e-9)  # area kept


def test_prepare_depth_units_frames_and_resolutions() -> None:
    frames_mm = np.zeros((67, 240, 320), dtype=np.uint16)
    for f in range(67):
        frames_mm[f, 100:140, 120:160] = 1000 + f  # a 40 x 40 px block at 1.0xx m, frame-coded
    depth = prepare_depth(frames_mm)
    assert depth.shape == (40, 60, 80) and depth.dtype == np.float32
    chosen = nearest_frame_indices(67, 40)
    np.testing.assert_allclose(depth[:, 27, 32], (1000 + chosen) / 1000.0, rtol=1e-6)  # no frame blending
    assert depth[:, 0, 0].max() == 0.0  # background stays 0
    # 480 x 640 frames already in metres (RealSense after scaling) give the same picture.
    big = np.repeat(np.repeat(frames_mm.astype(np.float32) / 1000.0, 2, axis=1), 2, axis=2)
    np.testing.assert_allclose(prepare_depth(big, depth_scale_m=1.0), depth, rtol=1e-6)


def test_normalization_pools_acc_and_gyro_and_leaves_depth() -> None:
    rng = np.random.default_rng(2)
    imu = np.concatenate(
        [rng.normal(0.5, 2.0, size=(50, 120, 3)), rng.normal(-10.0, 100.0, size=(50, 120, 3))], axis=2
    )
    imu[..., 0] += 3.0  # shifting one acc axis moves the shared acc mean by 1.0, not that axis alone
    skel = rng.normal([0.0, -0.3, 2.9], [0.1, 0.5, 0.2], size=(50, 40, 20, 3))
    depth = rng.random((50, 40, 60, 80))
    norm = Normalization().fit({"imu": imu, "skeleton": skel, "depth": depth})
    imu_stats = norm.stats["imu"]
    assert imu_stats is not None
    assert len(set(imu_stats["mean"][:3])) == 1 and len(set(imu_stats["std"][3:])) == 1
    np.testing.assert_allclose(imu_stats["mean"][0], 1.5, atol=0.05)
    out = norm.apply({"imu": imu, "skeleton": skel, "depth": depth})
    assert all(v.dtype == np.float32 for v in out.values())
    np.testing.assert_allclose(out["imu"][..., :3].mean(), 0.0, atol=1e-3)
    np.testing.assert_allclose(out["skeleton"].reshape(-1, 3).std(axis=0), 1.0, atol=1e-3)
    np.testing.assert_allclose(out["depth"], depth.astype(np.float32))  # untouched
    single = norm.apply({"imu": imu[3]})["imu"]
    np.testing.assert_allclose(single, out["imu"][3], rtol=1e-6)
    with pytest.raises(KeyError):
        norm.apply({"radar": np.zeros((4, 64, 4))})


def test_normalization_dict_round_trip_and_reference_constants() -> None:
    rng = np.random.default_rng(3)
    batch = {"imu": rng.normal(size=(10, 120, 6)), "skeleton": rng.normal(size=(10, 40, 20, 3))}
    norm = Normalization().fit(batch)
    restored = Normalization.from_dict(json.loads(json.dumps(norm.to_dict())))
    for name in batch:
        np.testing.assert_array_equal(restored.apply(batch)[name], norm.apply(batch)[name])
    ref = Normalization.reference(("imu", "skeleton", "depth"))
    assert ref.source == "reference"
    out = ref.apply({"imu": np.full((120, 6), [-0.32627] * 3 + [-0.86611] * 3)})["imu"]
    np.testing.assert_allclose(out, 0.0, atol=1e-6)
    assert ref.stats["skeleton"]["std"] == [0.142067, 0.472284, 0.162068]  # type: ignore[index]
    with pytest.raises(ValueError):
        Normalization.from_dict({"kind": "minmax"})


def test_constant_channel_does_not_divide_by_zero() -> None:
    norm = Normalization().fit({"skeleton": np.ones((4, 40, 20, 3))})
    assert np.isfinite(norm.apply({"skeleton": np.ones((40, 20, 3))})["skeleton"]).all()


def test_signature_is_json_and_names_the_version() -> None:
    sig = json.loads(json.dumps(preprocess_signature()))
    assert sig["version"] >= 1 and sig["input_shapes"]["depth"] == [40, 60, 80]

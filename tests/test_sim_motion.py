"""The synthetic person: physically sane IMU, smooth transitions, classes separable in every modality."""

import numpy as np
import pytest

from drivers.sim import body
from drivers.sim.depth_render import DepthRenderer
from drivers.sim.motion import ScriptedMotion
from drivers.sim.radar_synth import radar_points
from drivers.sim.script import build_segments

SEG_S = 12.0


@pytest.fixture(scope="module")
def motion() -> ScriptedMotion:
    steps = [(name, SEG_S) for name in body.ACTIVITIES]
    return ScriptedMotion(build_segments(steps, body.ACTIVITIES))


def test_standing_still_reads_one_g_and_no_rotation(motion) -> None:
    seg = motion.segments[body.ACTIVITIES.index("stand_still")]
    imu = motion.imu(np.arange(seg.start_s + 1.0, seg.end_s, 0.01))
    np.testing.assert_allclose(np.linalg.norm(imu[:, :3], axis=1), 1.0, atol=0.01)
    assert imu[:, 0].mean() < -0.95  # forearm hanging: x (towards the hand) points down
    assert np.abs(imu[:, 3:]).max() < 5.0


def test_transitions_have_no_spikes(motion) -> None:
    imu = motion.imu(np.arange(0.0, motion.duration_s, 0.005))
    assert np.abs(imu[:, :3]).max() < 4.0  # g
    assert np.abs(imu[:, 3:]).max() < 1000.0  # deg/s
    joints = motion.joints(np.arange(0.0, motion.duration_s, 0.005))
    assert np.abs(np.diff(joints, axis=0)).max() < 0.05  # metres per 5 ms


def test_limb_lengths_are_constant(motion) -> None:
    joints = motion.joints(np.linspace(0.0, motion.duration_s, 400))
    for a, b, length in (
        (body.R_SHOULDER, body.R_ELBOW, body.UPPER_ARM_M),
        (body.L_KNEE, body.L_ANKLE, body.SHIN_M),
    ):
        np.testing.assert_allclose(np.linalg.norm(joints[:, a] - joints[:, b], axis=1), length, atol=1e-9)


def windows(motion, rate_hz: float):
    """(label, times) of 2 s windows; the first half of each segment trains, the second tests."""
    for seg in motion.segments:
        for k, start in enumerate(np.arange(seg.start_s + 1.0, seg.end_s - 2.0, 1.0)):
            yield seg.label, k < 4, np.arange(start, start + 2.0, 1.0 / rate_hz)


def nearest_neighbour_accuracy(rows) -> float:
    """1-NN on z-scored features, fitted on the training windows, scored on the others."""
    labels = np.array([r[0] for r in rows])
    train = np.array([r[1] for r in rows])
    x = np.array([r[2] for r in rows], dtype=np.float64)
    x = (x - x[train].mean(0)) / (x[train].std(0) + 1e-9)
    distances = ((x[~train, None, :] - x[None, train, :]) ** 2).sum(-1)
    predicted = labels[train][np.argmin(distances, axis=1)]
    return float((predicted == labels[~train]).mean())


def test_imu_separates_activities(motion) -> None:
    rng = np.random.default_rng(0)
    rows = []
    for label, train, t in windows(motion, 100.0):
        imu = motion.imu(t) + rng.normal(0, 1, (len(t), 6)) * np.array([0.01] * 3 + [0.3] * 3)
        rows.append((label, train, np.concatenate([imu.mean(0), imu.std(0)])))
    assert nearest_neighbour_accuracy(rows) >= 0.95


def test_depth_separates_activities(motion) -> None:
    renderer = DepthRenderer(160, 120)
    rows = []
    for label, train, t in windows(motion, 15.0):
        frames = np.stack([renderer.render(j) for j in motion.joints(t)]).astype(np.float64) / 1000.0
        mask = frames > 0
        rows_any, cols_any = mask.any(2), mask.any(1)
        top = np.argmax(rows_any, axis=1)
        width = cols_any.shape[1] - np.argmax(cols_any[:, ::-1], axis=1) - np.argmax(cols_any, axis=1)
        z = (frames * mask).sum((1, 2)) / mask.sum((1, 2))
        speed = np.abs(np.diff(z)).mean() * 15.0
        energy = np.abs(np.diff(mask.astype(np.float64), axis=0)).mean()
        rows.append(
            (label, train, [mask.mean(), top.mean(), width.mean(), width.std(), z.mean(), speed, energy])
        )
    assert nearest_neighbour_accuracy(rows) >= 0.95


def test_radar_separates_activities(motion) -> None:
    rng = np.random.default_rng(1)
    rows = []
    for label, train, t in windows(motion, 20.0):
        now, later = motion.joints(t), motion.joints(t + 0.02)
        points = np.concatenate([radar_points(a, b, 0.02, rng)[0] for a, b in zip(now, later)])
        counts = len(points) / len(t)
        rows.append(
            (
                label,
                train,
                [
                    counts,
                    points[:, 2].mean(),
                    points[:, 2].std(),
                    np.abs(points[:, 3]).mean(),
                    points[:, 0].std(),
                    points[:, 1].std(),
                    np.percentile(points[:, 2], 95),
                ],
            )
        )
    assert nearest_neighbour_accuracy(rows) >= 0.9

"""Small generated datasets in the real prepared shapes, for tests and ``cosmo-edge demo``.

Each class is a motion pattern per modality: smooth IMU curves (acc in g, gyro in deg/s), arm
trajectories on a Kinect-like skeleton (metres, 20 joints), and depth frames rendered from that
skeleton (metres, background 0). Subjects differ in amplitude, speed, body size and position.

The modalities are complementary on purpose. Each class c has an IMU *group* ``c // 2`` and a
visual *group* ``(c // 2 + c % 2) % G``: classes 2k and 2k+1 share their IMU pattern, while
classes 2k+1 and 2k+2 share their skeleton/depth pattern. On top of that each class has a weak
class-specific detail in every modality. At low ``noise_std`` any modality separates all classes;
at high noise the details drown and one modality alone confuses pairs of classes, while the
fused (IMU group, visual group) pair still names the class.
"""

import logging
import math
from typing import Dict, List, Sequence, Tuple

import numpy as np

from cosmo_edge.datasets.base import MultimodalDataset
from cosmo_edge.preprocess import DEPTH_FRAMES, IMU_STEPS, SKELETON_FRAMES

logger = logging.getLogger(__name__)

SYNTHETIC_MODALITIES = ("imu", "skeleton", "depth")

# First frame of UTD-MHAD a1_s1_t1 (metres), rounded: a standing person about 2.9 m from the camera.
BASE_POSE = np.array(
    [
        [-0.05, 0.48, 2.83], [-0.03, 0.30, 2.88], [-0.03, -0.05, 2.89], [-0.03, -0.11, 2.84],
        [-0.20, 0.19, 2.88], [-0.24, -0.08, 2.84], [-0.24, -0.32, 2.79], [-0.23, -0.34, 2.78],
        [0.13, 0.20, 2.90], [0.19, -0.08, 2.89], [0.22, -0.31, 2.83], [0.22, -0.37, 2.80],
        [-0.10, -0.19, 2.82], [-0.12, -0.66, 2.93], [-0.07, -1.02, 2.95], [-0.11, -1.09, 2.91],
        [0.05, -0.19, 2.84], [0.07, -0.66, 2.91], [0.05, -1.02, 2.94], [0.10, -1.08, 2.92],
    ],
    dtype=np.float64,
)  # fmt: skip
# How much of the hand trajectory each arm joint follows: (elbow, wrist, hand).
RIGHT_ARM = (9, 10, 11)
LEFT_ARM = (5, 6, 7)
ARM_WEIGHTS = (0.4, 0.85, 1.0)
ACC_SCALE_G = 0.6
GYRO_SCALE_DPS = 100.0
HAND_RANGE_M = 0.25
DETAIL = 0.3  # class-specific detail relative to the group pattern
JOINT_RADIUS_M = 0.11


def _smooth_curves(
    rng: np.random.Generator, t: np.ndarray, n_curves: int, max_cycles: float = 3.0
) -> np.ndarray:
    """(len(t), n_curves) sums of three random sinusoids over t in [0, 1], roughly unit std."""
    freqs = rng.uniform(0.5, max_cycles, size=(3, n_curves))
    phases = rng.uniform(0.0, 2 * math.pi, size=(3, n_curves))
    amps = rng.uniform(0.5, 1.0, size=(3, n_curves))
    waves = amps[None] * np.sin(2 * math.pi * freqs[None] * t[:, None, None] + phases[None])
    return waves.sum(axis=1) / math.sqrt(1.5 * 0.6)


def _class_groups(num_classes: int) -> Tuple[np.ndarray, np.ndarray]:
    """(IMU group, visual group) per class; the pair is unique per class."""
    n_groups = max(2, math.ceil(num_classes / 2))
    classes = np.arange(num_classes)
    return classes // 2, (classes // 2 + classes % 2) % n_groups


def _render_depth(joints: np.ndarray, depth_hw: Tuple[int, int]) -> np.ndarray:
    """(F, 20, 3) joints in metres -> (F, H, W) depth in metres: nearest joint disc, background 0."""
    height, width = depth_hw
    frames = joints.shape[0]
    # Kinect v1 field of view, about 57 x 43 degrees.
    fx = (width / 2) / math.tan(math.radians(28.5))
    fy = (height / 2) / math.tan(math.radians(21.5))
    z = np.maximum(joints[..., 2], 0.5)
    u = width / 2 + fx * joints[..., 0] / z
    v = height / 2 - fy * joints[..., 1] / z
    radius = JOINT_RADIUS_M * fx / z
    reach = int(math.ceil(radius.max())) + 1
    offsets = np.arange(-reach, reach + 1)
    # Candidate pixels around each joint (F, J, P): only a small patch per joint is ever touched.
    rows = (np.floor(v)[..., None, None] + offsets[:, None]).astype(np.int64)
    cols = (np.floor(u)[..., None, None] + offsets[None, :]).astype(np.int64)
    rows, cols = np.broadcast_arrays(rows, cols)
    dist2 = (rows + 0.5 - v[..., None, None]) ** 2 + (cols + 0.5 - u[..., None, None]) ** 2
    inside = (
        (dist2 <= (radius**2)[..., None, None]) & (rows >= 0) & (rows < height) & (cols >= 0) & (cols < width)
    )
    frame_idx = np.broadcast_to(np.arange(frames)[:, None, None, None], rows.shape)
    flat = (frame_idx * height + rows) * width + cols
    depth = np.full(frames * height * width, np.inf)
    values = np.broadcast_to(z[..., None, None], rows.shape)
    np.minimum.at(depth, flat[inside], values[inside])  # z-buffer: the nearest joint wins
    depth[~np.isfinite(depth)] = 0.0
    return depth.reshape(frames, height, width)


def _warp(t: np.ndarray, gamma: float, shift: float) -> np.ndarray:
    """Subject speed profile and trial onset jitter on the normalised time axis."""
    return np.clip(t**gamma + shift, 0.0, 1.0)


def make_synthetic_dataset(
    num_classes: int = 6,
    num_subjects: int = 4,
    trials_per_subject_class: int = 3,
    modalities: Sequence[str] = ("imu", "skeleton"),
    seed: int = 0,
    depth_hw: Tuple[int, int] = (60, 80),
    noise_std: float = 0.3,
) -> MultimodalDataset:
    """Generate a small class-distinguishable dataset in the prepared shapes.

    Args:
        num_classes: K >= 2 classes, labelled 0..K-1 (``synthetic-{c}``).
        num_subjects: subjects numbered 1..S, each with its own amplitude, speed and body.
        trials_per_subject_class: trials per (subject, class).
        modalities: any of ``imu`` (120, 6), ``skeleton`` (40, 20, 3), ``depth`` (40, *depth_hw).
        seed: everything (patterns, subjects, noise) derives from it.
        depth_hw: depth frame size in pixels.
        noise_std: noise relative to the signal scale; around 1.0 single modalities confuse
            pairs of classes while the fused pair still separates them.
    """
    unknown = [m for m in modalities if m not in SYNTHETIC_MODALITIES]
    if unknown or num_classes < 2:
        raise ValueError(f"make_synthetic_dataset: modalities from {SYNTHETIC_MODALITIES}, >= 2 classes")
    rng = np.random.default_rng(seed)
    imu_group, vis_group = _class_groups(num_classes)
    t_imu = np.linspace(0.0, 1.0, IMU_STEPS)
    t_vis = np.linspace(0.0, 1.0, SKELETON_FRAMES)
    n_imu, n_vis = int(imu_group.max()) + 1, int(vis_group.max()) + 1
    # Pattern generators are functions of (warped) time so subjects can move at their own speed.
    imu_params = [rng.integers(0, 2**31) for _ in range(n_imu + num_classes)]
    vis_params = [rng.integers(0, 2**31) for _ in range(n_vis + num_classes)]

    def pattern(seed_value: int, t: np.ndarray, n_curves: int) -> np.ndarray:
        return _smooth_curves(np.random.default_rng(seed_value), t, n_curves)

    inputs: Dict[str, List[np.ndarray]] = {m: [] for m in modalities}
    labels, subjects, trial_ids = [], [], []
    for subject in range(1, num_subjects + 1):
        amp = rng.uniform(0.8, 1.2)
        gamma = rng.uniform(0.85, 1.15)
        body = rng.uniform(0.9, 1.1)
        offset = np.array([rng.uniform(-0.25, 0.25), rng.uniform(-0.05, 0.05), rng.uniform(-0.3, 0.3)])
        acc_bias = rng.normal(0.0, 0.05, size=3)
        for label in range(num_classes):
            for trial in range(1, trials_per_subject_class + 1):
                shift = rng.uniform(-0.05, 0.05)
                ti, tv = _warp(t_imu, gamma, shift), _warp(t_vis, gamma, shift)
                if "imu" in modalities:
                    clean = pattern(imu_params[imu_group[label]], ti, 6)
                    clean = clean + DETAIL * pattern(imu_params[n_imu + label], ti, 6)
                    noisy = amp * clean + noise_std * (
                        _smooth_curves(rng, t_imu, 6) + rng.normal(0.0, 0.5, size=(IMU_STEPS, 6))
                    )
                    scale = np.array([ACC_SCALE_G] * 3 + [GYRO_SCALE_DPS] * 3)
                    imu = noisy * scale
                    imu[:, :3] += acc_bias + np.array([0.0, -0.9, -0.3])
                    inputs["imu"].append(imu.astype(np.float32))
                if "skeleton" in modalities or "depth" in modalities:
                    hands = pattern(vis_params[vis_group[label]], tv, 6)
                    hands = hands + DETAIL * pattern(vis_params[n_vis + label], tv, 6)
                    pose = np.repeat((BASE_POSE * body + offset)[None], SKELETON_FRAMES, axis=0)
                    for arm, cols in ((RIGHT_ARM, slice(0, 3)), (LEFT_ARM, slice(3, 6))):
                        for joint, weight in zip(arm, ARM_WEIGHTS):
                            pose[:, joint] += weight * amp * HAND_RANGE_M * hands[:, cols]
                    if "skeleton" in modalities:
                        inputs["skeleton"].append(_noisy_skeleton(rng, pose, t_vis, noise_std))
                    if "depth" in modalities:
                        frames = _render_depth(_noisy_skeleton(rng, pose, t_vis, noise_std), depth_hw)
                        frames[frames > 0] += rng.normal(0.0, 0.02 * noise_std, size=int((frames > 0).sum()))
                        frames[rng.random(frames.shape) < 0.02] = 0.0
                        inputs["depth"].append(np.clip(frames, 0.0, None).astype(np.float32))
                labels.append(label)
                subjects.append(subject)
                trial_ids.append(f"c{label + 1}_s{subject}_t{trial}")
    assert all(len(v) == len(labels) for v in inputs.values())
    stacked = {m: np.stack(inputs[m]).astype(np.float32) for m in modalities}
    if "depth" in stacked:
        assert stacked["depth"].shape[1] == DEPTH_FRAMES
    logger.debug(
        "synthetic dataset: %d trials, %d classes, modalities %s", len(labels), num_classes, modalities
    )
    return MultimodalDataset(
        inputs=stacked,
        labels=np.array(labels),
        subjects=np.array(subjects),
        trial_ids=trial_ids,
        label_names=[f"synthetic-{c}" for c in range(num_classes)],
        meta={"source": "synthetic", "seed": seed, "noise_std": noise_std},
    )


def _noisy_skeleton(
    rng: np.random.Generator, pose: np.ndarray, t: np.ndarray, noise_std: float
) -> np.ndarray:
    """Add smooth per-joint wobble plus frame jitter (metres) to a clean (F, 20, 3) pose."""
    wobble = _smooth_curves(rng, t, pose.shape[1] * 3).reshape(pose.shape)
    jitter = rng.normal(0.0, 0.3, size=pose.shape)
    return (pose + noise_std * HAND_RANGE_M * 0.5 * (wobble + jitter)).astype(np.float32)

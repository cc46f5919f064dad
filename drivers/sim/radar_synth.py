"""Radar point clouds synthesised from skeleton joints (what the TI demo's CFAR would report).

Each body segment (bone) yields a Poisson number of points: a few for its static reflection plus
more the faster it moves radially (moving limbs light up in Doppler). Points lie along the bone
with 3 cm scatter; their Doppler is the bone's radial velocity at that point (positive = moving
away from the radar) plus noise. The radar sits at the camera; coordinates are converted from
Kinect space (x left, y up, z forward) to the TI frame (x right, y boresight, z up).
"""

import logging
from typing import Tuple

import numpy as np

from drivers.sim import body as b

logger = logging.getLogger(__name__)

# (joint a, joint b, expected static points)
BONES = (
    (b.HEAD, b.SHOULDER_C, 1.5),
    (b.SHOULDER_C, b.HIP_C, 3.0),
    (b.L_SHOULDER, b.L_ELBOW, 0.6),
    (b.L_ELBOW, b.L_HAND, 0.6),
    (b.R_SHOULDER, b.R_ELBOW, 0.6),
    (b.R_ELBOW, b.R_HAND, 0.6),
    (b.L_HIP, b.L_KNEE, 1.0),
    (b.L_KNEE, b.L_ANKLE, 0.8),
    (b.R_HIP, b.R_KNEE, 1.0),
    (b.R_KNEE, b.R_ANKLE, 0.8),
)
_A = np.array([bone[0] for bone in BONES])
_B = np.array([bone[1] for bone in BONES])
_STATIC = np.array([bone[2] for bone in BONES])
POINTS_PER_MPS = 8.0
POSITION_NOISE_M = 0.03
DOPPLER_NOISE_MPS = 0.05


def kinect_to_radar(xyz: np.ndarray) -> np.ndarray:
    """Kinect camera coordinates to the TI radar frame (x right, y boresight, z up)."""
    return np.stack([-xyz[..., 0], xyz[..., 2], xyz[..., 1]], axis=-1)


def radar_points(
    joints: np.ndarray, joints_later: np.ndarray, dt_s: float, rng: np.random.Generator, max_points: int = 64
) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One frame from two poses ``dt_s`` apart: points (n, 4) float32 [x, y, z, doppler], SNR and noise dB."""
    start, end = joints[_A], joints[_B]
    vel_start = (joints_later[_A] - start) / dt_s
    vel_end = (joints_later[_B] - end) / dt_s
    mid = 0.5 * (start + end)
    radial = np.abs(np.sum(0.5 * (vel_start + vel_end) * mid, axis=1) / np.linalg.norm(mid, axis=1))
    counts = rng.poisson(_STATIC + POINTS_PER_MPS * radial)
    bone = np.repeat(np.arange(len(BONES)), counts)
    u = rng.random(len(bone))[:, None]
    pos = start[bone] + u * (end[bone] - start[bone]) + rng.normal(0.0, POSITION_NOISE_M, (len(bone), 3))
    vel = vel_start[bone] + u * (vel_end[bone] - vel_start[bone])
    doppler = np.sum(vel * pos, axis=1) / np.maximum(np.linalg.norm(pos, axis=1), 1e-6)
    doppler += rng.normal(0.0, DOPPLER_NOISE_MPS, len(bone))
    if len(bone) > max_points:
        keep = np.sort(rng.choice(len(bone), max_points, replace=False))
        pos, doppler = pos[keep], doppler[keep]
    points = np.concatenate([kinect_to_radar(pos), doppler[:, None]], axis=1).astype(np.float32)
    snr_db = (12.0 + 15.0 * rng.random(len(points))).astype(np.float32)
    noise_db = (30.0 + 5.0 * rng.random(len(points))).astype(np.float32)
    return points, snr_db, noise_db

"""A synthetic person: 20 Kinect-v1 joints for six scripted activities, vectorised over time.

Coordinates follow UTD-MHAD's skeletons (Kinect camera space, metres): x to the sensor's left (the
person's right when facing it), y up, z away from the camera. Limbs hang from angle functions of
time; ``pose(activity, t)`` returns the joints and the right forearm's orientation (the wrist IMU's
frame), both smooth in time so that the IMU can be differentiated from them.

Joint order (0-based): head, shoulder_center, spine, hip_center, left shoulder/elbow/wrist/hand,
right shoulder/elbow/wrist/hand, left hip/knee/ankle/foot, right hip/knee/ankle/foot.
"""

import logging
from typing import Dict, Tuple

import numpy as np

logger = logging.getLogger(__name__)

ACTIVITIES = ("walk", "wave", "sit", "stand_still", "squat", "clap")
NUM_JOINTS = 20
HEAD, SHOULDER_C, SPINE, HIP_C = 0, 1, 2, 3
L_SHOULDER, L_ELBOW, L_WRIST, L_HAND = 4, 5, 6, 7
R_SHOULDER, R_ELBOW, R_WRIST, R_HAND = 8, 9, 10, 11
L_HIP, L_KNEE, L_ANKLE, L_FOOT = 12, 13, 14, 15
R_HIP, R_KNEE, R_ANKLE, R_FOOT = 16, 17, 18, 19

UPPER_ARM_M, FOREARM_M, HAND_M = 0.28, 0.24, 0.08
THIGH_M, SHIN_M = 0.44, 0.40
STAND_ROOT = np.array([0.0, -0.10, 2.90])
# Trunk offsets from hip_center when upright: head, shoulder_center, spine, shoulders, hips.
_TRUNK = {HEAD: (0.0, 0.59), SHOULDER_C: (0.0, 0.40), SPINE: (0.0, 0.06)}
_SHOULDER_X, _SHOULDER_Y, _HIP_X, _HIP_Y = 0.17, 0.30, 0.08, -0.08
RIGHT, LEFT = 1.0, -1.0

Angles = Dict[str, np.ndarray]
ANGLE_KEYS = tuple(
    ["root_x", "root_y", "root_z", "lean", "plant"]
    + [f"{side}_{name}" for side in "rl" for name in ("uf", "ua", "uy", "ff", "fa", "fy", "hip", "knee")]
)


def limb_rotation(flex: np.ndarray, abd: np.ndarray, yaw: np.ndarray, side: float) -> np.ndarray:
    """Rotation matrices (n, 3, 3) = Ry(side*yaw) @ Rz(side*abd) @ Rx(flex).

    Applied to (0, -1, 0) (a limb hanging down) they give the limb direction: ``flex`` swings it
    forward (towards the camera), ``abd`` out to the side, ``yaw`` turns it about the vertical
    (positive = towards the body's midline).
    """
    cf, sf = np.cos(flex), np.sin(flex)
    ca, sa = np.cos(side * abd), np.sin(side * abd)
    cy, sy = np.cos(side * yaw), np.sin(side * yaw)
    n = np.broadcast(flex, abd, yaw).shape
    zero, one = np.zeros(n), np.ones(n)
    rx = np.stack([one, zero, zero, zero, cf, -sf, zero, sf, cf], -1).reshape(n + (3, 3))
    rz = np.stack([ca, -sa, zero, sa, ca, zero, zero, zero, one], -1).reshape(n + (3, 3))
    ry = np.stack([cy, zero, sy, zero, one, zero, -sy, zero, cy], -1).reshape(n + (3, 3))
    return ry @ rz @ rx


def limb_direction(flex: np.ndarray, abd: np.ndarray, yaw: np.ndarray, side: float) -> np.ndarray:
    """Unit vectors (n, 3): where a limb with these angles points."""
    return limb_rotation(flex, abd, yaw, side)[..., :, 1] * -1.0


def _zeros(t: np.ndarray) -> np.ndarray:
    return np.zeros_like(t)


def _angles(activity: str, t: np.ndarray) -> Angles:
    """Angle and root functions of time for one activity (radians, metres)."""
    z = _zeros(t)
    a: Angles = {"root_x": z, "root_y": z, "root_z": z, "lean": z}
    two_pi = 2.0 * np.pi
    if activity == "stand_still":
        sway = np.sin(two_pi * 0.25 * t)
        a.update(
            root_x=0.01 * sway, r_uf=0.05 + 0.02 * sway, l_uf=0.05 - 0.02 * sway, r_ff=z + 0.15, l_ff=z + 0.15
        )
        a.update(r_ua=z + 0.08, l_ua=z + 0.08)
    elif activity == "walk":
        phase = two_pi * t / 1.1
        s = np.sin(phase)
        a.update(root_z=0.7 * np.sin(two_pi * t / 8.0), root_y=0.025 * np.cos(2.0 * phase))
        a.update(r_hip=0.35 * s, l_hip=-0.35 * s)
        a.update(r_knee=0.1 + 0.5 * np.clip(np.sin(phase - 0.6), 0, None))
        a.update(l_knee=0.1 + 0.5 * np.clip(-np.sin(phase - 0.6), 0, None))
        a.update(r_uf=-0.35 * s, l_uf=0.35 * s, r_ff=-0.35 * s + 0.35, l_ff=0.35 * s + 0.35)
        a.update(r_ua=z + 0.08, l_ua=z + 0.08)
    elif activity == "wave":
        a.update(r_uf=z + 0.3, r_ua=z + 1.3, r_ff=z + np.pi, r_fa=0.45 * np.sin(two_pi * 1.5 * t))
        a.update(l_uf=z + 0.05, l_ua=z + 0.08, l_ff=z + 0.15)
    elif activity == "clap":
        yaw = 0.55 + 0.35 * np.cos(two_pi * 2.0 * t)
        a.update(r_uf=z + 0.7, l_uf=z + 0.7, r_ua=z + 0.25, l_ua=z + 0.25)
        a.update(r_ff=z + np.pi / 2, l_ff=z + np.pi / 2, r_fy=yaw, l_fy=yaw)
    elif activity == "sit":
        breath = 0.02 * np.sin(two_pi * 0.25 * t)
        a.update(lean=0.08 + breath, plant=z + 1.0)
        a.update(r_hip=z + np.pi / 2, l_hip=z + np.pi / 2, r_knee=z + np.pi / 2, l_knee=z + np.pi / 2)
        a.update(r_uf=z + 0.35, l_uf=z + 0.35, r_ff=z + 1.25, l_ff=z + 1.25, r_fy=z + 0.2, l_fy=z + 0.2)
        a.update(r_ua=z + 0.1, l_ua=z + 0.1)
    elif activity == "squat":
        depth = 0.5 * (1.0 - np.cos(two_pi * t / 3.0))
        a.update(lean=0.45 * depth, plant=z + 1.0)
        a.update(r_hip=1.3 * depth, l_hip=1.3 * depth, r_knee=2.0 * depth, l_knee=2.0 * depth)
        a.update(r_uf=1.4 * depth, l_uf=1.4 * depth, r_ff=1.45 * depth, l_ff=1.45 * depth)
        a.update(r_ua=z + 0.1, l_ua=z + 0.1)
    else:
        raise ValueError(f"unknown activity {activity!r}; known: {', '.join(ACTIVITIES)}")
    return a


def activity_angles(activity: str, t: np.ndarray) -> Angles:
    """Every angle and root function of ``activity`` at local times ``t`` (missing ones are 0)."""
    t = np.asarray(t, dtype=np.float64).reshape(-1)
    a = _angles(activity, t)
    full = {key: np.zeros_like(t) for key in ANGLE_KEYS}
    full.update({key: np.broadcast_to(value, t.shape).astype(np.float64) for key, value in a.items()})
    return full


def blend_angles(first: Angles, second: Angles, weight: np.ndarray) -> Angles:
    """Per-time linear blend of two angle sets (weight 0 = ``first``, 1 = ``second``)."""
    return {key: (1.0 - weight) * first[key] + weight * second[key] for key in ANGLE_KEYS}


def pose(activity: str, t: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Joints (n, 20, 3) and right-forearm rotation (n, 3, 3) at activity-local times ``t`` (n,)."""
    return pose_from_angles(activity_angles(activity, t))


def pose_from_angles(a: Angles) -> Tuple[np.ndarray, np.ndarray]:
    """Joints (n, 20, 3) and right-forearm rotations (n, 3, 3) from an angle set."""
    lean = a["lean"]
    n = len(lean)
    zero = np.zeros(n)
    joints = np.zeros((n, NUM_JOINTS, 3))
    for joint, (dx, height) in _TRUNK.items():
        joints[:, joint] = np.stack([dx + zero, height * np.cos(lean), -height * np.sin(lean)], -1)
    for side, shoulder, hip in ((RIGHT, R_SHOULDER, R_HIP), (LEFT, L_SHOULDER, L_HIP)):
        joints[:, shoulder] = np.stack(
            [side * _SHOULDER_X + zero, _SHOULDER_Y * np.cos(lean), -_SHOULDER_Y * np.sin(lean)], -1
        )
        joints[:, hip] = np.array([side * _HIP_X, _HIP_Y, 0.0])
    forearm_r = np.zeros((n, 3, 3))
    for side, prefix, base in ((RIGHT, "r_", R_SHOULDER), (LEFT, "l_", L_SHOULDER)):
        upper = limb_direction(a[prefix + "uf"], a[prefix + "ua"], a[prefix + "uy"], side)
        rot = limb_rotation(a[prefix + "ff"], a[prefix + "fa"], a[prefix + "fy"], side)
        fore = -rot[..., :, 1]
        joints[:, base + 1] = joints[:, base] + UPPER_ARM_M * upper
        joints[:, base + 2] = joints[:, base + 1] + FOREARM_M * fore
        joints[:, base + 3] = joints[:, base + 2] + HAND_M * fore
        if side == RIGHT:
            forearm_r = rot
    for side, prefix, hip in ((RIGHT, "r_", R_HIP), (LEFT, "l_", L_HIP)):
        hip_flex, knee = a[prefix + "hip"], a[prefix + "knee"]
        joints[:, hip + 1] = joints[:, hip] + THIGH_M * limb_direction(hip_flex, zero, zero, side)
        joints[:, hip + 2] = joints[:, hip + 1] + SHIN_M * limb_direction(hip_flex - knee, zero, zero, side)
        joints[:, hip + 3] = joints[:, hip + 2] + np.array([0.0, -0.04, -0.10])
    root = STAND_ROOT + np.stack([a["root_x"], a["root_y"], a["root_z"]], -1)
    # "plant" (0..1) keeps the ankles where a standing person's are: the body moves, the feet stay.
    ankles = 0.5 * (joints[:, L_ANKLE] + joints[:, R_ANKLE])
    correction = np.stack([zero, (_HIP_Y - THIGH_M - SHIN_M) - ankles[:, 1], -ankles[:, 2]], -1)
    root = root + a["plant"][:, None] * correction
    joints += root[:, None, :]
    return joints, forearm_r


def orthonormalize(rot: np.ndarray) -> np.ndarray:
    """Nearest-ish rotation to a blended matrix (Gram-Schmidt on its first two columns)."""
    c0 = rot[..., :, 0] / np.linalg.norm(rot[..., :, 0], axis=-1, keepdims=True)
    c1 = rot[..., :, 1] - np.sum(rot[..., :, 1] * c0, axis=-1, keepdims=True) * c0
    c1 /= np.linalg.norm(c1, axis=-1, keepdims=True)
    return np.stack([c0, c1, np.cross(c0, c1)], axis=-1)

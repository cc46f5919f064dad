"""Motion sources: what the simulated sensors observe, as smooth functions of simulation time.

``ScriptedMotion`` plays an activity script on the synthetic body (``body``), blending the joint
angles over 0.6 s into each new activity so that nothing jumps. From the pose it derives what a
wrist-worn IMU measures: specific force (acceleration minus gravity, in g) and angular rate
(deg/s) in the sensor's frame, whose x axis points along the forearm towards the hand (as in
UTD-MHAD, where a hanging arm reads about -1 g on x). Sources return noise-free values; the
emitters add sensor noise.
"""

import logging
from typing import List, Optional, Sequence, Tuple

import numpy as np

from drivers.sim import body
from drivers.sim.script import Segment

logger = logging.getLogger(__name__)

GRAVITY_MPS2 = 9.80665
BLEND_S = 0.6
DIFF_STEP_S = 0.004


class MotionSource:
    """Interface every motion source implements (synthetic script or recorded replay)."""

    label_names: List[str]
    segments: List[Segment]
    # Synthetic sources are noise-free, so emitters add sensor noise; recordings already have it.
    synthetic: bool = True

    @property
    def duration_s(self) -> float:
        """Simulation seconds covered by the segments."""
        return self.segments[-1].end_s if self.segments else 0.0

    def joints(self, t_s: np.ndarray) -> np.ndarray:
        """Skeleton joints (n, 20, 3), Kinect camera coordinates in metres."""
        raise NotImplementedError

    def imu(self, t_s: np.ndarray) -> np.ndarray:
        """IMU values (n, 6): specific force in g (x, y, z), angular rate in deg/s (x, y, z)."""
        raise NotImplementedError

    def depth_mm(self, t_s: float) -> Optional[np.ndarray]:
        """A recorded depth frame (uint16 mm), or ``None`` when the simulator should render one."""
        return None

    def segment_index(self, t_s: np.ndarray) -> np.ndarray:
        """Index of the segment each time falls in (clipped to the first and last)."""
        starts = np.array([seg.start_s for seg in self.segments])
        return np.clip(np.searchsorted(starts, np.asarray(t_s), side="right") - 1, 0, len(starts) - 1)


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


class ScriptedMotion(MotionSource):
    """The synthetic person performing ``segments`` (activities from ``body.ACTIVITIES``)."""

    def __init__(self, segments: Sequence[Segment], label_names: Sequence[str] = body.ACTIVITIES) -> None:
        if not segments:
            raise ValueError("a motion script needs at least one segment")
        self.segments = list(segments)
        self.label_names = list(label_names)

    def pose(self, t_s: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """Joints (n, 20, 3) and right-forearm rotations (n, 3, 3) at simulation times ``t_s``."""
        t_s = np.asarray(t_s, dtype=np.float64).reshape(-1)  # the first and last activities extend outwards
        joints = np.empty((len(t_s), body.NUM_JOINTS, 3))
        rots = np.empty((len(t_s), 3, 3))
        index = self.segment_index(t_s)
        for i in np.unique(index):
            mask = index == i
            seg = self.segments[i]
            local = t_s[mask] - seg.start_s
            angles = body.activity_angles(seg.activity, local)
            if i > 0 and local.min() < BLEND_S:
                prev = self.segments[i - 1]
                before = body.activity_angles(prev.activity, t_s[mask] - prev.start_s)
                angles = body.blend_angles(before, angles, _smoothstep(local / BLEND_S))
            joints[mask], rots[mask] = body.pose_from_angles(angles)
        return joints, rots

    def joints(self, t_s: np.ndarray) -> np.ndarray:
        return self.pose(t_s)[0]

    def imu(self, t_s: np.ndarray) -> np.ndarray:
        t_s = np.asarray(t_s, dtype=np.float64).reshape(-1)
        n = len(t_s)
        joints, rots = self.pose(np.concatenate([t_s - DIFF_STEP_S, t_s, t_s + DIFF_STEP_S]))
        wrist = joints[:, body.R_WRIST].reshape(3, n, 3)
        accel = (wrist[2] - 2.0 * wrist[1] + wrist[0]) / DIFF_STEP_S**2
        force_g = (accel + np.array([0.0, GRAVITY_MPS2, 0.0])) / GRAVITY_MPS2
        # Sensor axes as columns: x along the forearm, y and z completing a right-handed frame.
        sensor = np.stack([-rots[..., 1], rots[..., 0], rots[..., 2]], axis=-1).reshape(3, n, 3, 3)
        s_t = np.swapaxes(sensor[1], -1, -2)
        acc = np.einsum("nij,nj->ni", s_t, force_g)
        omega = s_t @ ((sensor[2] - sensor[0]) / (2.0 * DIFF_STEP_S))  # skew matrix, rad/s
        gyro = 0.5 * np.stack(
            [
                omega[:, 2, 1] - omega[:, 1, 2],
                omega[:, 0, 2] - omega[:, 2, 0],
                omega[:, 1, 0] - omega[:, 0, 1],
            ],
            axis=-1,
        )
        return np.concatenate([acc, np.degrees(gyro)], axis=1)

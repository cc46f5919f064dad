"""Replay UTD-MHAD recordings through the simulated devices.

Each chosen trial becomes one segment whose length is the inertial recording's (n samples at
50 Hz). The IMU stream is the recorded one (exact at a 50 Hz device rate, linearly interpolated
otherwise). Depth frames (240 x 320 mm, background removed) and skeletons (the radar's source)
are spread over the same trial time on a normalised axis, nearest frame for depth and linear for
joints, because the recorded streams do not share one clock (the inertial clip runs about 1.6x
longer than the 30 Hz nominal rate implies). Files are read with scipy.io; the data root comes
from the caller (a flag or ``COSMO_DATA``), never from a fixed path.
"""

import logging
import os
import re
from typing import List, Optional, Sequence, Tuple

import numpy as np

from drivers.sim.motion import MotionSource
from drivers.sim.script import Segment

logger = logging.getLogger(__name__)

IMU_RATE_HZ = 50.0
UTD_ACTIONS = (
    "swipe_left swipe_right wave clap throw arm_cross basketball_shoot draw_x draw_circle_cw "
    "draw_circle_ccw draw_triangle bowling boxing baseball_swing tennis_swing arm_curl tennis_serve "
    "push knock catch pickup_throw jog walk sit_to_stand stand_to_sit lunge squat"
).split()
_TRIAL = re.compile(r"^a(\d+)_s(\d+)_t(\d+)$")


def parse_trial(name: str) -> Tuple[int, int, int]:
    """``"a3_s1_t2"`` -> (3, 1, 2)."""
    match = _TRIAL.match(name.strip())
    if match is None:
        raise ValueError(f"trial {name!r} is not of the form aA_sS_tT")
    return int(match.group(1)), int(match.group(2)), int(match.group(3))


class UtdTrial:
    """One trial's arrays: inertial (n, 6), skeleton (F, 20, 3) metres, depth (F, 240, 320) mm or None."""

    def __init__(self, root: str, name: str, with_depth: bool = True) -> None:
        import scipy.io

        self.name = name
        self.action, self.subject, self.trial = parse_trial(name)
        self.inertial = np.asarray(
            scipy.io.loadmat(os.path.join(root, "Inertial", f"{name}_inertial.mat"))["d_iner"]
        )
        skel = scipy.io.loadmat(os.path.join(root, "Skeleton", f"{name}_skeleton.mat"))["d_skel"]
        self.skeleton = np.transpose(np.asarray(skel, dtype=np.float64), (2, 0, 1))
        self.depth: Optional[np.ndarray] = None
        if with_depth:
            depth = scipy.io.loadmat(os.path.join(root, "Depth", f"{name}_depth.mat"))["d_depth"]
            self.depth = np.ascontiguousarray(np.transpose(depth, (2, 0, 1)).astype(np.uint16))

    @property
    def duration_s(self) -> float:
        return len(self.inertial) / IMU_RATE_HZ


class UtdReplay(MotionSource):
    """A motion source that plays UTD-MHAD trials back to back.

    Args:
        root: the dataset folder holding ``Inertial/``, ``Skeleton/`` and ``Depth/``.
        trials: trial names such as ``"a3_s1_t1"``.
        with_depth: load depth (skip it for IMU/radar-only runs).
    """

    synthetic = False

    def __init__(self, root: str, trials: Sequence[str], with_depth: bool = True) -> None:
        if not trials:
            raise ValueError("UTD-MHAD replay needs at least one trial")
        self.label_names = list(UTD_ACTIONS)
        self.trials: List[UtdTrial] = [UtdTrial(root, name, with_depth) for name in trials]
        self.segments = []
        t_s = 0.0
        for trial in self.trials:
            label = trial.action - 1
            self.segments.append(Segment(UTD_ACTIONS[label], t_s, t_s + trial.duration_s, label))
            t_s += trial.duration_s
        logger.info("replaying %d UTD-MHAD trials, %.1f s", len(self.trials), t_s)

    def _locate(self, t_s: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """Segment index and normalised position in [0, 1] of each time."""
        t_s = np.clip(np.asarray(t_s, dtype=np.float64).reshape(-1), 0.0, self.duration_s)
        index = self.segment_index(t_s)
        starts = np.array([s.start_s for s in self.segments])[index]
        lengths = np.array([s.end_s - s.start_s for s in self.segments])[index]
        return index, np.clip((t_s - starts) / lengths, 0.0, 1.0)

    def imu(self, t_s: np.ndarray) -> np.ndarray:
        index, u = self._locate(t_s)
        out = np.empty((len(u), 6))
        for i in np.unique(index):
            mask = index == i
            data = self.trials[i].inertial
            position = u[mask] * len(data)  # sample k sits at k / 50 s
            grid = np.arange(len(data), dtype=np.float64)
            for channel in range(6):
                out[mask, channel] = np.interp(position, grid, data[:, channel])
        return out

    def joints(self, t_s: np.ndarray) -> np.ndarray:
        index, u = self._locate(t_s)
        out = np.empty((len(u), 20, 3))
        for i in np.unique(index):
            mask = index == i
            skel = self.trials[i].skeleton
            position = u[mask] * (len(skel) - 1)
            low = np.floor(position).astype(int)
            high = np.minimum(low + 1, len(skel) - 1)
            w = (position - low)[:, None, None]
            out[mask] = (1.0 - w) * skel[low] + w * skel[high]
        return out

    def depth_mm(self, t_s: float) -> Optional[np.ndarray]:
        index, u = self._locate(np.array([t_s]))
        depth = self.trials[int(index[0])].depth
        if depth is None:
            return np.zeros((240, 320), dtype=np.uint16)
        return depth[int(round(float(u[0]) * (len(depth) - 1)))]

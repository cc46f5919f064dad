"""Cheap depth rendering of the synthetic body: capsules (swept spheres) between joints.

Each capsule is projected with a pinhole camera and filled over its bounding box only, with the
front-surface depth of the swept sphere; a z-buffer keeps the nearest. Frames are cached by the
pose rounded to 1 cm, so periodic activities re-use their frames. Output is uint16 millimetres
with 0 where there is no body (as UTD-MHAD's background-removed depth), or a static wall and
floor behind the person when ``background="room"``.
"""

import collections
import logging
from typing import Deque, Dict, Optional, Tuple

import numpy as np

from drivers.sim import body as b

logger = logging.getLogger(__name__)

# (joint a, joint b, radius m)
CAPSULES = (
    (b.HEAD, b.HEAD, 0.10),
    (b.SHOULDER_C, b.SPINE, 0.16),
    (b.SPINE, b.HIP_C, 0.15),
    (b.L_SHOULDER, b.L_ELBOW, 0.05),
    (b.L_ELBOW, b.L_WRIST, 0.04),
    (b.L_WRIST, b.L_HAND, 0.045),
    (b.R_SHOULDER, b.R_ELBOW, 0.05),
    (b.R_ELBOW, b.R_WRIST, 0.04),
    (b.R_WRIST, b.R_HAND, 0.045),
    (b.L_HIP, b.L_KNEE, 0.075),
    (b.L_KNEE, b.L_ANKLE, 0.055),
    (b.L_ANKLE, b.L_FOOT, 0.045),
    (b.R_HIP, b.R_KNEE, 0.075),
    (b.R_KNEE, b.R_ANKLE, 0.055),
    (b.R_ANKLE, b.R_FOOT, 0.045),
)
# Kinect-like horizontal field of view: fx = 0.906 * width (585 px at 640).
FOCAL_PER_WIDTH = 0.906
WALL_Z_M = 4.5
FLOOR_Y_M = -1.08


class DepthRenderer:
    """Renders joints (20, 3) to a uint16 depth image in millimetres.

    Args:
        width, height: image size in pixels.
        background: ``"none"`` (zeros, background removed) or ``"room"`` (wall and floor).
        cache_frames: most frames kept in the pose cache (memory = frames x width x height x 2 bytes).
    """

    def __init__(self, width: int, height: int, background: str = "none", cache_frames: int = 64) -> None:
        if background not in ("none", "room"):
            raise ValueError(f"background must be 'none' or 'room', got {background!r}")
        self.width, self.height = int(width), int(height)
        self.fx = self.fy = FOCAL_PER_WIDTH * self.width
        self.cx, self.cy = (self.width - 1) / 2.0, (self.height - 1) / 2.0
        self.cache_frames = int(cache_frames)
        self._cache: Dict[bytes, np.ndarray] = {}
        self._order: Deque[bytes] = collections.deque()
        self.cache_hits = 0
        self.renders = 0
        self._background = self._room() if background == "room" else None
        self._u = np.arange(self.width, dtype=np.float32)
        self._v = np.arange(self.height, dtype=np.float32)

    def project(self, xyz: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """Pixel coordinates (u, v) of Kinect-space points (x to the sensor's left appears left)."""
        return self.cx - self.fx * xyz[..., 0] / xyz[..., 2], self.cy - self.fy * xyz[..., 1] / xyz[..., 2]

    def _room(self) -> np.ndarray:
        """Static wall at ``WALL_Z_M`` and a floor plane at ``FLOOR_Y_M``, in mm."""
        v = np.arange(self.height, dtype=np.float64)[:, None]
        ray_y = (self.cy - v) / self.fy  # y / z along each pixel row
        with np.errstate(divide="ignore"):
            floor_z = np.where(ray_y < 0, FLOOR_Y_M / ray_y, np.inf)
        depth = np.minimum(floor_z, WALL_Z_M) * np.ones((1, self.width))
        return np.rint(depth * 1000.0).astype(np.uint16)

    def render(self, joints: np.ndarray) -> np.ndarray:
        """Depth image (height, width) uint16 mm of one pose; cached by the pose rounded to 1 cm."""
        key = np.rint(np.asarray(joints) * 100.0).astype(np.int16).tobytes()
        frame = self._cache.get(key)
        if frame is not None:
            self.cache_hits += 1
            return frame
        frame = self._render(np.asarray(joints, dtype=np.float64))
        frame.setflags(write=False)
        self._cache[key] = frame
        self._order.append(key)
        while len(self._order) > self.cache_frames:
            self._cache.pop(self._order.popleft(), None)
        return frame

    def _render(self, joints: np.ndarray) -> np.ndarray:
        self.renders += 1
        boxes = [self._capsule_box(joints[ja], joints[jb], radius) for ja, jb, radius in CAPSULES]
        boxes = [box for box in boxes if box is not None]
        body_mm = np.zeros((self.height, self.width), dtype=np.uint16)
        if boxes:
            # Work only inside the union of the capsules' boxes: the rest of the frame stays 0.
            v0, v1 = min(b[2] for b in boxes), max(b[3] for b in boxes)
            u0, u1 = min(b[0] for b in boxes), max(b[1] for b in boxes)
            zbuf = np.full((v1 - v0, u1 - u0), np.inf, dtype=np.float32)
            for box in boxes:
                self._fill(zbuf, box, u0, v0)
            body_mm[v0:v1, u0:u1] = np.where(np.isfinite(zbuf), np.rint(zbuf * 1000.0), 0)
        if self._background is None:
            return body_mm
        return np.where(body_mm > 0, np.minimum(body_mm, self._background), self._background)

    def _capsule_box(self, a: np.ndarray, b_end: np.ndarray, radius: float) -> Optional[Tuple]:
        """Projected capsule: pixel box (u0, u1, v0, v1), end points, depths and radius; None if off-image."""
        (ua, ub), (va, vb) = zip(self.project(a), self.project(b_end))
        za, zb = float(a[2]), float(b_end[2])
        r_px = radius * self.fx / max(min(za, zb), 0.1)
        u0 = int(max(0, np.floor(min(ua, ub) - r_px)))
        u1 = int(min(self.width, np.ceil(max(ua, ub) + r_px) + 1))
        v0 = int(max(0, np.floor(min(va, vb) - r_px)))
        v1 = int(min(self.height, np.ceil(max(va, vb) + r_px) + 1))
        if u0 >= u1 or v0 >= v1:
            return None
        return u0, u1, v0, v1, ua, ub, va, vb, za, zb, radius, r_px

    def _fill(self, zbuf: np.ndarray, box: Tuple, off_u: int, off_v: int) -> None:
        """Z-buffer one capsule's front surface (metres) into ``zbuf``, whose origin is (off_u, off_v)."""
        u0, u1, v0, v1, ua, ub, va, vb, za, zb, radius, r_px = box
        uu = self._u[u0:u1][None, :] - ua  # pixel offsets from the capsule's first end
        vv = self._v[v0:v1][:, None] - va
        du, dv = ub - ua, vb - va
        length2 = du * du + dv * dv
        if length2 > 1e-9:
            t = np.clip((uu * du + vv * dv) * (1.0 / length2), 0.0, 1.0)
        else:
            t = np.zeros((v1 - v0, u1 - u0), dtype=np.float32)
        dist2 = (uu - t * du) ** 2 + (vv - t * dv) ** 2
        inside = dist2 < r_px * r_px
        if not inside.any():
            return
        bulge = radius * np.sqrt(np.clip(1.0 - dist2 * (1.0 / (r_px * r_px)), 0.0, 1.0))
        depth = np.where(inside, za + t * (zb - za) - bulge, np.inf)
        region = zbuf[v0 - off_v : v1 - off_v, u0 - off_u : u1 - off_u]
        np.minimum(region, depth, out=region)

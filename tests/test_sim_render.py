"""Depth rendering of the synthetic body: geometry, units, background, cache."""

import numpy as np
import pytest

from drivers.sim import body
from drivers.sim.depth_render import DepthRenderer


def standing() -> np.ndarray:
    return body.pose("stand_still", np.array([0.0]))[0][0]


def test_silhouette_where_the_camera_sees_the_body() -> None:
    renderer = DepthRenderer(320, 240)
    joints = standing()
    frame = renderer.render(joints)
    assert frame.dtype == np.uint16 and frame.shape == (240, 320)
    body_mm = frame[frame > 0]
    assert 2600 < body_mm.min() < body_mm.max() < 3100  # person 2.9 m away, front surface nearer
    u, v = renderer.project(joints[body.HEAD])
    assert frame[int(round(v)), int(round(u))] == pytest.approx(joints[body.HEAD, 2] * 1000 - 100, abs=5)
    rows, cols = np.nonzero(frame)
    assert abs(cols.mean() - 160) < 10 and rows.min() < 120 < rows.max()  # centred, head above the middle
    # The person's right hand (Kinect +x) appears on the image's left.
    hand_u, _ = renderer.project(joints[body.R_HAND])
    assert hand_u < 160


def test_room_background_and_cache() -> None:
    renderer = DepthRenderer(160, 120, background="room", cache_frames=2)
    joints = np.round(standing(), 2)
    frame = renderer.render(joints)
    assert (frame > 0).all() and frame.max() == 4500  # wall at 4.5 m behind, floor in front
    again = renderer.render(joints + 0.002)  # same pose to the centimetre
    assert again is frame and renderer.cache_hits == 1 and renderer.renders == 1
    for k in range(3):
        renderer.render(joints + 0.05 * (k + 1))
    renderer.render(joints)
    assert renderer.renders == 5  # evicted after two newer poses

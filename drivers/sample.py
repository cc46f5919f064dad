"""The one record every driver emits: a timestamped chunk of one sensor stream."""

from dataclasses import dataclass
from typing import Optional

import numpy as np


@dataclass(frozen=True)
class Sample:
    """One timestamped sample (or frame) of a sensor stream.

    Attributes:
        stream: stream name from the config, e.g. ``"imu"``, ``"depth"``, ``"radar"``.
        t_device_s: the sensor's own clock in seconds, unwrapped and scaled by the driver;
            ``None`` when the stream has no device clock (arrival-clocked).
        t_host_ns: ``time.monotonic_ns()`` when the sample's last byte arrived on the host.
        data: the payload; its shape and units are documented by each driver.
        seq: per-stream sequence number from the device (frame counter) or the driver.
    """

    stream: str
    t_device_s: Optional[float]
    t_host_ns: int
    data: np.ndarray
    seq: int = 0

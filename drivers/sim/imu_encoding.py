"""Encode simulated IMU samples in the wire formats the ``imu_serial`` driver reads.

- ``timestamped_text``: ``t_us,ax,ay,az,gx,gy,gz*HH`` lines (raw int16 counts at the configured
  full scales, ``t_us`` the device clock in us modulo 2^32).
- ``mpu6050_text``: the MPU6050_raw sketch's ``a/g:`` lines, after its three banner lines.
- ``witmotion``: one cycle of 11-byte frames per sample: 0x50 chip time (optional), 0x51
  acceleration (w3 = 25.00 degC), 0x52 angular rate, 0x53 roll/pitch from gravity (yaw 0).
"""

import datetime
import logging
from typing import List

import numpy as np

from drivers import imu_text, imu_witmotion

logger = logging.getLogger(__name__)

MPU6050_BANNER = (
    b"Initializing I2C devices...\r\nTesting device connections...\r\nMPU6050 connection successful\r\n"
)
CHIP_TIME_ORIGIN = datetime.datetime(2024, 1, 1)
PROTOCOLS = ("timestamped_text", "mpu6050_text", "witmotion")


class ImuEncoder:
    """Turns (n, 6) samples [acc g, gyro deg/s] plus device times into per-sample byte strings.

    Args:
        protocol: one of ``PROTOCOLS``.
        accel_fs_g, gyro_fs_dps: full scales of the text protocols (values saturate like the sensor).
        witmotion_time: send a 0x50 chip-time frame in every WitMotion cycle.
    """

    def __init__(
        self, protocol: str, accel_fs_g: int = 16, gyro_fs_dps: int = 2000, witmotion_time: bool = True
    ) -> None:
        if protocol not in PROTOCOLS:
            raise ValueError(f"unknown IMU protocol {protocol!r}; expected one of {', '.join(PROTOCOLS)}")
        self.protocol = protocol
        self.accel_fs_g, self.gyro_fs_dps = int(accel_fs_g), int(gyro_fs_dps)
        self.witmotion_time = witmotion_time

    def banner(self) -> bytes:
        """What the device prints when it (re)starts."""
        return MPU6050_BANNER if self.protocol == "mpu6050_text" else b""

    def encode(self, values: np.ndarray, device_s: np.ndarray) -> List[bytes]:
        """One byte string per sample."""
        values = np.asarray(values, dtype=np.float64)
        if self.protocol == "witmotion":
            return [self._witmotion(v, t) for v, t in zip(values, device_s)]
        counts = imu_text.units_to_counts(values, self.accel_fs_g, self.gyro_fs_dps).tolist()
        if self.protocol == "mpu6050_text":
            return [imu_text.format_ag_line(c) for c in counts]
        t_us = np.rint(np.asarray(device_s) * 1e6).astype(np.int64) % imu_text.U32_MODULUS
        return [imu_text.format_timestamped_line(int(t), c) for t, c in zip(t_us, counts)]

    def _witmotion(self, v: np.ndarray, device_s: float) -> bytes:
        wm = imu_witmotion
        frames = []
        if self.witmotion_time:
            when = CHIP_TIME_ORIGIN + datetime.timedelta(seconds=float(device_s))
            frames.append(wm.build_frame(wm.TYPE_TIME, wm.time_payload(when)))
        acc = wm.words_payload(v[:3], wm.ACC_FULL_SCALE_G)[:6] + (2500).to_bytes(2, "little", signed=True)
        frames.append(wm.build_frame(wm.TYPE_ACC, acc))
        frames.append(wm.build_frame(wm.TYPE_GYRO, wm.words_payload(v[3:], wm.GYRO_FULL_SCALE_DPS)))
        roll = np.degrees(np.arctan2(v[1], v[2]))
        pitch = np.degrees(np.arctan2(-v[0], np.hypot(v[1], v[2])))
        frames.append(
            wm.build_frame(wm.TYPE_ANGLE, wm.words_payload([roll, pitch, 0.0], wm.ANGLE_FULL_SCALE_DEG))
        )
        return b"".join(frames)

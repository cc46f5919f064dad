"""WitMotion WT901 / JY901 binary protocol: 11-byte frames, resync on 0x55, one sample per cycle.

Frame (platform.md 1.1): ``0x55``, type byte, 8 payload bytes (four little-endian int16 words),
checksum = low byte of the sum of bytes 0..9. The parser resynchronises byte by byte exactly as the
vendor decoder does and never raises; ``WitMotionAssembler`` keeps the latest acceleration, angular
rate and angle frames and emits one reading on the cycle's last enabled type.
"""

import datetime
import logging
import struct
from typing import Dict, List, NamedTuple, Optional, Sequence

import numpy as np

logger = logging.getLogger(__name__)

HEADER = 0x55
FRAME_BYTES = 11
TYPE_TIME = 0x50
TYPE_ACC = 0x51
TYPE_GYRO = 0x52
TYPE_ANGLE = 0x53
TYPE_QUATERNION = 0x59
TYPE_REGISTER = 0x5F
KNOWN_TYPES = frozenset(range(0x50, 0x5B)) | {TYPE_REGISTER}

ACC_FULL_SCALE_G = 16.0
GYRO_FULL_SCALE_DPS = 2000.0
ANGLE_FULL_SCALE_DEG = 180.0
_WORDS = struct.Struct("<4h")
_TIME = struct.Struct("<6BH")
# Calendar origin for the 0x50 chip time; only differences of device times matter.
_EPOCH = datetime.datetime(2000, 1, 1)


class WitFrame(NamedTuple):
    """One checksum-valid frame: its type byte and the 8 payload bytes."""

    frame_type: int
    payload: bytes


def checksum(frame_head: bytes) -> int:
    """Low byte of the sum of the 10 bytes before the checksum."""
    return sum(frame_head) & 0xFF


def build_frame(frame_type: int, payload: bytes) -> bytes:
    """Encode one frame (header, type, 8 payload bytes, checksum); used by tests and the simulator."""
    if len(payload) != 8:
        raise ValueError(f"WitMotion payload must be 8 bytes, got {len(payload)}")
    head = bytes((HEADER, frame_type)) + payload
    return head + bytes((checksum(head),))


def words_payload(values: Sequence[float], full_scale: float) -> bytes:
    """Scale up to four physical values to int16 words (``w = v / full_scale * 32768``, saturated)."""
    words = [0, 0, 0, 0]
    for i, value in enumerate(values):
        words[i] = int(max(-32768, min(32767, round(value / full_scale * 32768.0))))
    return _WORDS.pack(*words)


def time_payload(when: datetime.datetime) -> bytes:
    """Encode a chip time (year - 2000, month, day, hour, minute, second, milliseconds)."""
    return _TIME.pack(
        when.year - 2000, when.month, when.day, when.hour, when.minute, when.second, when.microsecond // 1000
    )


def decode_words(payload: bytes, full_scale: float) -> np.ndarray:
    """The three scaled words of an acceleration, angular-rate or angle frame (w3 dropped)."""
    return np.asarray(_WORDS.unpack(payload)[:3], dtype=np.float64) * (full_scale / 32768.0)


def decode_time_s(payload: bytes) -> Optional[float]:
    """Seconds since 2000-01-01 of a 0x50 chip time, or ``None`` for an impossible date."""
    yy, month, day, hour, minute, second, millis = _TIME.unpack(payload)
    try:
        when = datetime.datetime(2000 + yy, month, day, hour, minute, second)
    except ValueError:
        return None
    if millis > 999:
        return None
    return (when - _EPOCH).total_seconds() + millis / 1000.0


class WitMotionParser:
    """Byte-stream to frames, with the vendor's byte-by-byte resync (platform.md 1.1).

    ``feed`` never raises. Counters: ``frames_ok``, ``frames_bad`` (unknown type or checksum),
    ``bytes_skipped`` (bytes before a header plus the single byte dropped after a bad frame).
    """

    def __init__(self) -> None:
        self._buf = bytearray()
        self.frames_ok = 0
        self.frames_bad = 0
        self.bytes_skipped = 0

    def reset(self) -> None:
        """Forget a partial frame (after a reconnect); counters are kept."""
        self.bytes_skipped += len(self._buf)
        self._buf.clear()

    def feed(self, data: bytes) -> List[WitFrame]:
        """Append ``data`` and return every complete valid frame now in the buffer."""
        buf = self._buf
        buf.extend(data)
        frames: List[WitFrame] = []
        while True:
            start = buf.find(HEADER)
            if start < 0:
                self.bytes_skipped += len(buf)
                buf.clear()
                break
            if start:
                self.bytes_skipped += start
                del buf[:start]
            if len(buf) < FRAME_BYTES:
                break
            if buf[1] not in KNOWN_TYPES or checksum(buf[:10]) != buf[10]:
                self.frames_bad += 1
                self.bytes_skipped += 1
                del buf[:1]
                continue
            self.frames_ok += 1
            frames.append(WitFrame(buf[1], bytes(buf[2:10])))
            del buf[:FRAME_BYTES]
        return frames


class ImuReading(NamedTuple):
    """One IMU sample before it becomes a ``Sample``: [acc g xyz, gyro deg/s xyz] and device time."""

    values: np.ndarray
    t_device_s: Optional[float]


class WitMotionAssembler:
    """Groups frames into output cycles and emits one reading per complete cycle.

    Args:
        emit_type: the cycle's last enabled type (0x53 when angles are on, else 0x52).
        use_time: expect a 0x50 frame in every cycle and use it as device time.

    Counters: ``cycles_incomplete`` (a cycle without acceleration, angular rate or, when
    ``use_time``, chip time; no reading is emitted without acc and gyro), ``time_bad``
    (impossible chip date), ``frames_other`` (valid frames of unused types, skipped).
    """

    def __init__(self, emit_type: int = TYPE_ANGLE, use_time: bool = False) -> None:
        if emit_type not in (TYPE_ACC, TYPE_GYRO, TYPE_ANGLE, TYPE_QUATERNION):
            raise ValueError(f"emit_type must be 0x51, 0x52, 0x53 or 0x59, got {emit_type:#x}")
        self.emit_type = emit_type
        self.use_time = use_time
        self._cycle: Dict[int, bytes] = {}
        self.cycles_incomplete = 0
        self.time_bad = 0
        self.frames_other = 0
        self.last_angles_deg: Optional[np.ndarray] = None

    def reset(self) -> None:
        """Forget the cycle in progress (after a reconnect)."""
        self._cycle.clear()

    def add(self, frame: WitFrame) -> Optional[ImuReading]:
        """Take one frame; return a reading when it closes a complete cycle."""
        if frame.frame_type == TYPE_ANGLE:
            self.last_angles_deg = decode_words(frame.payload, ANGLE_FULL_SCALE_DEG)
        if frame.frame_type not in (TYPE_TIME, TYPE_ACC, TYPE_GYRO, TYPE_ANGLE, TYPE_QUATERNION):
            self.frames_other += 1
            return None
        self._cycle[frame.frame_type] = frame.payload
        if frame.frame_type != self.emit_type:
            return None
        cycle, self._cycle = self._cycle, {}
        if TYPE_ACC not in cycle or TYPE_GYRO not in cycle:
            self.cycles_incomplete += 1
            return None
        t_device_s = None
        if self.use_time:
            if TYPE_TIME not in cycle:
                self.cycles_incomplete += 1
            else:
                t_device_s = decode_time_s(cycle[TYPE_TIME])
                if t_device_s is None:
                    self.time_bad += 1
        values = np.concatenate(
            [
                decode_words(cycle[TYPE_ACC], ACC_FULL_SCALE_G),
                decode_words(cycle[TYPE_GYRO], GYRO_FULL_SCALE_DPS),
            ]
        ).astype(np.float32)
        return ImuReading(values, t_device_s)

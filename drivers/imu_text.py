"""Text IMU lines: the MPU-6050 ``a/g:`` sketch output and the project's timestamped line.

``a/g:`` lines (platform.md 1.2): ``a/g:`` then six TAB-separated raw int16 counts (ax ay az gx gy
gz), CR LF, no device time. Timestamped lines (docs/protocol.md, "Sensor wire formats"):
``t_us,ax,ay,az,gx,gy,gz*HH`` CR LF, with ``t_us`` the sender's ``micros()`` (u32, wraps) and ``HH``
the XOR of every byte before ``*`` in two hex digits. Raw counts become g and deg/s through the
configured full scales. Lines over 256 bytes are dropped; a malformed data line counts as bad and the
stream goes on; banner and other lines count as ``lines_other``. ``feed`` never raises.
"""

import logging
import re
from typing import List, NamedTuple, Optional, Tuple

import numpy as np

logger = logging.getLogger(__name__)

MAX_LINE_BYTES = 256
INT16_MIN, INT16_MAX = -32768, 32767
U32_MODULUS = 1 << 32
PROTOCOL_AG = "mpu6050_text"
PROTOCOL_TIMESTAMPED = "timestamped_text"

# Full scale (g, deg/s) -> sensitivity (LSB per unit), PS-MPU-6000A rev 3.4 p. 13.
ACCEL_LSB_PER_G = {2: 16384.0, 4: 8192.0, 8: 4096.0, 16: 2048.0}
GYRO_LSB_PER_DPS = {250: 131.0, 500: 65.5, 1000: 32.8, 2000: 16.4}

_TIMESTAMPED = re.compile(
    rb"^(\d{1,10}),(-?\d{1,6}),(-?\d{1,6}),(-?\d{1,6}),(-?\d{1,6}),(-?\d{1,6}),(-?\d{1,6})$"
)
_AG = re.compile(rb"^a/g:" + rb"\t(-?\d{1,6})" * 6 + rb"$")
_HEX2 = re.compile(rb"^[0-9A-Fa-f]{2}$")


class TextReading(NamedTuple):
    """One decoded line: raw counts (6,), the line's ``t_us`` (timestamped lines) and its index.

    ``line_index`` counts data lines, bad ones included (the index clock of ``a/g:`` streams).
    """

    counts: Tuple[int, int, int, int, int, int]
    t_us: Optional[int]
    line_index: int


def xor_checksum(body: bytes) -> int:
    """XOR of all bytes, as in NMEA sentences."""
    value = 0
    for byte in body:
        value ^= byte
    return value


def format_timestamped_line(t_us: int, counts: Tuple[int, ...]) -> bytes:
    """Encode one timestamped line (``t_us`` taken modulo 2^32); used by tests and the simulator."""
    body = ",".join([str(int(t_us) % U32_MODULUS)] + [str(int(c)) for c in counts]).encode("ascii")
    return body + b"*%02X\r\n" % xor_checksum(body)


def format_ag_line(counts: Tuple[int, ...]) -> bytes:
    """Encode one MPU6050_raw sketch line."""
    return ("a/g:\t" + "\t".join(str(int(c)) for c in counts) + "\r\n").encode("ascii")


def counts_to_units(counts: Tuple[int, ...], accel_fs_g: int, gyro_fs_dps: int) -> np.ndarray:
    """Raw counts to float32 [acc g xyz, gyro deg/s xyz] at the given full scales."""
    raw = np.asarray(counts, dtype=np.float64)
    raw[:3] /= ACCEL_LSB_PER_G[accel_fs_g]
    raw[3:] /= GYRO_LSB_PER_DPS[gyro_fs_dps]
    return raw.astype(np.float32)


def units_to_counts(values: np.ndarray, accel_fs_g: int, gyro_fs_dps: int) -> np.ndarray:
    """Physical values (n, 6) to saturated int16 counts, as the sensor would report them."""
    values = np.asarray(values, dtype=np.float64)
    scale = np.array([ACCEL_LSB_PER_G[accel_fs_g]] * 3 + [GYRO_LSB_PER_DPS[gyro_fs_dps]] * 3)
    return np.clip(np.rint(values * scale), INT16_MIN, INT16_MAX).astype(np.int64)


def _int16s(fields: List[bytes]) -> Optional[Tuple[int, ...]]:
    """Six fields as int16 values, or ``None`` when any is not an integer in range."""
    if len(fields) != 6:
        return None
    try:
        values = tuple(int(field) for field in fields)
    except ValueError:
        return None
    if any(v < INT16_MIN or v > INT16_MAX for v in values):
        return None
    return values


class TextLineParser:
    """Splits bytes into lines and decodes them for one protocol.

    Counters: ``frames_ok``, ``frames_bad`` (data lines that fail the rules, over-long lines),
    ``lines_other`` (banners, lines without the data marker, a cut first line after a (re)open),
    ``bytes_skipped`` (bytes of every line not decoded, and of a partial line flushed by ``resync``).
    """

    def __init__(self, protocol: str) -> None:
        if protocol not in (PROTOCOL_AG, PROTOCOL_TIMESTAMPED):
            raise ValueError(f"unknown text protocol {protocol!r}")
        self.protocol = protocol
        self._buf = bytearray()
        self._discarding = False
        self._partial_first = False
        self.line_index = 0
        self.frames_ok = 0
        self.frames_bad = 0
        self.lines_other = 0
        self.bytes_skipped = 0

    def resync(self) -> None:
        """Drop the buffer; the next line may be the tail of one cut by the (re)open.

        That first line is decoded normally; if it fails it counts as ``lines_other`` (a partial
        line), not as a bad frame.
        """
        self.bytes_skipped += len(self._buf)
        self._buf.clear()
        self._discarding = False
        self._partial_first = True

    def feed(self, data: bytes) -> List[TextReading]:
        """Append ``data``; return the readings of every complete valid data line."""
        buf = self._buf
        buf.extend(data)
        readings: List[TextReading] = []
        while True:
            end = buf.find(b"\n")
            if end < 0:
                if len(buf) > MAX_LINE_BYTES:
                    self._drop_overlong(len(buf))
                break
            line = bytes(buf[:end])
            del buf[: end + 1]
            partial, self._partial_first = self._partial_first, False
            if self._discarding:
                self._discarding = False
                self.bytes_skipped += len(line) + 1
                continue
            if len(line) + 1 > MAX_LINE_BYTES:
                self._count_bad(len(line) + 1)
                continue
            if partial:
                reading = self._decode_partial(line.rstrip(b"\r"))
            else:
                reading = self._decode(line.rstrip(b"\r"))
            if reading is not None:
                readings.append(reading)
        return readings

    def _drop_overlong(self, n_bytes: int) -> None:
        """An unterminated line exceeded the limit: count it bad once and skip to the next newline."""
        self.bytes_skipped += n_bytes
        self._buf.clear()
        if not self._discarding:
            self.frames_bad += 1
            self.line_index += 1
            self._discarding = True

    def _count_bad(self, n_bytes: int) -> None:
        """A data line that failed the rules."""
        self.frames_bad += 1
        self.line_index += 1
        self.bytes_skipped += n_bytes

    def _decode_partial(self, line: bytes) -> Optional[TextReading]:
        """Decode the first line after a (re)open; a failure there is a cut line, not a bad frame."""
        bad, index = self.frames_bad, self.line_index
        reading = self._decode(line)
        if reading is None and self.frames_bad > bad:
            self.frames_bad, self.line_index = bad, index
            self.lines_other += 1
        return reading

    def _decode(self, line: bytes) -> Optional[TextReading]:
        """Classify and decode one line without its terminator."""
        if self.protocol == PROTOCOL_AG:
            return self._decode_ag(line)
        return self._decode_timestamped(line)

    def _decode_ag(self, line: bytes) -> Optional[TextReading]:
        marker = line.find(b"a/g:")
        if marker < 0:
            self.lines_other += 1
            self.bytes_skipped += len(line) + 1
            return None
        match = _AG.match(line)
        counts = _int16s(list(match.groups())) if match is not None else None
        if counts is None:
            self._count_bad(len(line) + 1)
            return None
        return self._ok(counts, None)

    def _decode_timestamped(self, line: bytes) -> Optional[TextReading]:
        body, star, check = line.rpartition(b"*")
        if not star:
            self.lines_other += 1
            self.bytes_skipped += len(line) + 1
            return None
        match = _TIMESTAMPED.match(body) if line.isascii() else None
        if (
            match is None
            or not _HEX2.match(check)
            or int(check, 16) != xor_checksum(body)
            or int(match.group(1)) >= U32_MODULUS
        ):
            self._count_bad(len(line) + 1)
            return None
        counts = _int16s(list(match.groups()[1:]))
        if counts is None:
            self._count_bad(len(line) + 1)
            return None
        return self._ok(counts, int(match.group(1)))

    def _ok(self, counts: Tuple[int, ...], t_us: Optional[int]) -> TextReading:
        reading = TextReading(counts, t_us, self.line_index)  # type: ignore[arg-type]
        self.line_index += 1
        self.frames_ok += 1
        return reading

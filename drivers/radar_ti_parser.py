"""TI mmWave out-of-box demo data port: magic word, frame header, TLVs (platform.md 2.2-2.5).

``TiFrameParser.feed(bytes, t_ns)`` returns decoded ``RadarFrame`` objects and never raises. It
finds the magic word, checks the header for plausibility, waits for ``totalPacketLen`` bytes and
walks the TLVs inside the packet; an implausible header or a TLV overrun drops ONE byte and
resynchronises. The packet has no checksum, so a packet cut short would swallow the start of the
next one: a magic word found inside a packet's claimed length is taken as such a cut (counted in
``frames_cut``) and the parser resyncs there. Trade-off: a packet whose payload really contains the
8 magic bytes is dropped, which is far rarer (2^-64 per position for random bytes) than a lost
frame on a USB link, and keeps one corrupted length from costing two frames.

The outcome does not depend on where reads split the stream: a complete packet is accepted only
once every position of its claimed span is known not to start a magic word. A magic word starting
in the last 7 bytes of the span runs past it, so when the bytes received end in a prefix of the
magic word (``02``, ``02 01``, ...) the packet is held until the bytes that decide it arrive. Real
packets end in zero padding or point data, so this almost never delays one; the one held is
released by the next read (normally the next packet) or, when the stream goes quiet, by
``flush(t_ns)`` after ``HOLD_QUIET_S`` without bytes (the driver calls it on an empty read), and
keeps the time of the read that completed it. Holding every packet until 7 more bytes arrive would
be simpler but would delay every frame by a frame period.

``build_packet`` is the inverse (SDK 3.x layout; legacy header size selectable) for tests and the
simulator.
"""

import logging
import struct
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

logger = logging.getLogger(__name__)

MAGIC = bytes((0x02, 0x01, 0x04, 0x03, 0x06, 0x05, 0x08, 0x07))
PLATFORMS = frozenset((0xA1443, 0xA1642, 0xA1843, 0xA6843))
HEADER_BYTES = 40
LEGACY_HEADER_BYTES = 36
MAX_PACKET_BYTES = 65536
MAX_TLVS = 16
MAX_POINTS = 1024
PACKET_ALIGN = 32
HOLD_QUIET_S = 0.02  # a packet held on a magic-word prefix is accepted after this long without bytes

TLV_DETECTED_POINTS = 1
TLV_RANGE_PROFILE = 2
TLV_NOISE_PROFILE = 3
TLV_STATS = 6
TLV_SIDE_INFO = 7
TLV_TEMPERATURE = 9
KNOWN_TLVS = frozenset(range(1, 10))

_HEADER = struct.Struct("<8s8I")  # magic + version .. subFrameNumber (40 bytes)
_HEADER_START = struct.Struct("<8sIII")  # magic, version, totalPacketLen, platform
_TL = struct.Struct("<II")
_STATS = struct.Struct("<6I")
_LEGACY_DESCRIPTOR = struct.Struct("<HH")
_LEGACY_POINT = np.dtype([("range", "<u2"), ("doppler", "<i2"), ("peak", "<u2"), ("xyz", "<i2", (3,))])
_SIDE_INFO = np.dtype([("snr", "<i2"), ("noise", "<i2")])
STATS_FIELDS = (
    "inter_frame_processing_time_us",
    "transmit_output_time_us",
    "inter_frame_processing_margin_us",
    "inter_chirp_processing_margin_us",
    "active_frame_cpu_load_pct",
    "inter_frame_cpu_load_pct",
)


@dataclass
class RadarFrame:
    """One decoded packet.

    Attributes:
        frame_number: the demo's frame counter.
        version, platform: header fields (see platform.md 2.2).
        time_cpu_cycles: diagnostic cycle counter (wraps; not a clock to trust).
        sub_frame: sub-frame number (0 without the advanced frame config).
        points: float32 (n, 4) x, y, z in metres, radial Doppler in m/s (radar frame: x right,
            y boresight, z up).
        snr_db, noise_db: float32 (n,) from TLV 7, ``None`` when absent.
        stats: TLV 6 fields by name, ``None`` when absent.
        packet_bytes: ``totalPacketLen``.
        t_last_byte_ns: ``time.monotonic_ns()`` of the read that completed the packet.
    """

    frame_number: int
    version: int
    platform: int
    time_cpu_cycles: int
    sub_frame: int
    points: np.ndarray
    snr_db: Optional[np.ndarray]
    noise_db: Optional[np.ndarray]
    stats: Optional[Dict[str, int]]
    packet_bytes: int
    t_last_byte_ns: int


class _BadPacket(Exception):
    """Internal: the TLV walk left the packet or a TLV was malformed."""


def header_bytes_for(version: int, platform: int) -> int:
    """36 for xWR14xx on SDK 1.x/2.x (no subFrameNumber), else 40."""
    return LEGACY_HEADER_BYTES if platform == 0xA1443 and (version >> 24) < 3 else HEADER_BYTES


class TiFrameParser:
    """Byte stream to ``RadarFrame`` objects with resync (see the module docstring).

    Args:
        doppler_resolution_mps: m/s per Doppler bin, used only for legacy (SDK < 3) fixed-point
            points, whose Doppler is a bin index; 0 leaves their Doppler at 0.

    Counters: ``frames_ok``, ``frames_bad`` (implausible header, TLV overrun, cut packets),
    ``bytes_skipped``, ``frames_cut``, ``tlvs_unknown``, ``points_invalid`` (non-finite, dropped).
    """

    def __init__(self, doppler_resolution_mps: float = 0.0) -> None:
        self.doppler_resolution_mps = float(doppler_resolution_mps)
        self._buf = bytearray()
        self.frames_ok = 0
        self.frames_bad = 0
        self.bytes_skipped = 0
        self.frames_cut = 0
        self.tlvs_unknown = 0
        self.points_invalid = 0
        self._held_t_ns: Optional[int] = None  # read that completed the packet held at the buffer start
        self._last_data_ns: Optional[int] = None

    def reset(self) -> None:
        """Forget a partial packet (after a reconnect)."""
        self.bytes_skipped += len(self._buf)
        self._buf.clear()
        self._held_t_ns = None

    def _skip(self, n_bytes: int) -> None:
        self.bytes_skipped += n_bytes
        del self._buf[:n_bytes]
        self._held_t_ns = None

    def feed(self, data: bytes, t_ns: int) -> List[RadarFrame]:
        """Append ``data`` (read at ``t_ns``) and return every packet it completes."""
        if data:
            self._buf.extend(data)
            self._last_data_ns = t_ns
        return self._parse(t_ns, quiet=False)

    def flush(self, t_ns: Optional[int] = None) -> List[RadarFrame]:
        """The stream paused: accept a packet held on a magic-word prefix at its end (module docstring).

        With ``t_ns`` (an empty read's time) only when no byte arrived for ``HOLD_QUIET_S``; without,
        at once (end of input). Returns the packets this decides, usually none.
        """
        if t_ns is not None and self._last_data_ns is not None:
            if t_ns - self._last_data_ns < HOLD_QUIET_S * 1e9:
                return []
        return self._parse(t_ns if t_ns is not None else 0, quiet=True)

    def _parse(self, t_ns: int, quiet: bool) -> List[RadarFrame]:
        """Decode every packet the buffer holds; ``quiet``: treat bytes not yet received as no magic."""
        buf = self._buf
        frames: List[RadarFrame] = []
        while True:
            start = buf.find(MAGIC)
            if start < 0:
                self._skip(max(0, len(buf) - (len(MAGIC) - 1)))
                break
            if start:
                self._skip(start)
            if len(buf) < _HEADER_START.size:
                break
            _, version, total_len, platform = _HEADER_START.unpack_from(buf)
            header_len = header_bytes_for(version, platform)
            if len(buf) < header_len:
                break
            fields = struct.unpack_from("<8I", buf, 8)
            if not self._plausible(fields, header_len):
                self.frames_bad += 1
                self._skip(1)
                continue
            inner = buf.find(MAGIC, 1, min(len(buf), total_len + len(MAGIC) - 1))
            if inner > 0:
                self.frames_cut += 1
                self.frames_bad += 1
                self._skip(inner)
                continue
            if len(buf) < total_len:
                break
            if self._held_t_ns is None:
                self._held_t_ns = t_ns  # this read completed the packet: its t_last_byte
            if not quiet and _magic_may_start(buf, total_len):
                break  # undecided until the next bytes (or a quiet flush)
            t_last_byte_ns = self._held_t_ns
            try:
                frames.append(self._decode(bytes(buf[:total_len]), fields, header_len, t_last_byte_ns))
            except _BadPacket as exc:
                logger.debug("bad radar packet: %s", exc)
                self.frames_bad += 1
                self._skip(1)
                continue
            self.frames_ok += 1
            del buf[:total_len]
            self._held_t_ns = None
        return frames

    @staticmethod
    def _plausible(fields: Tuple[int, ...], header_len: int) -> bool:
        """platform.md 2.5: version major 1-3, known platform, sane length, TLV and point counts."""
        version, total_len, platform, _, _, num_obj, num_tlvs = fields[:7]
        return (
            1 <= (version >> 24) <= 3
            and platform in PLATFORMS
            and total_len % PACKET_ALIGN == 0
            and header_len <= total_len <= MAX_PACKET_BYTES
            and num_tlvs <= MAX_TLVS
            and num_obj <= MAX_POINTS
        )

    def _decode(self, packet: bytes, fields: Tuple[int, ...], header_len: int, t_ns: int) -> RadarFrame:
        """Walk the TLVs of one complete packet."""
        version, total_len, platform, frame_number, cycles, num_obj, num_tlvs = fields[:7]
        sub_frame = fields[7] if header_len == HEADER_BYTES else 0
        legacy_points = (version >> 24) < 3
        points = np.zeros((0, 4), dtype=np.float32)
        side: Optional[np.ndarray] = None
        stats: Optional[Dict[str, int]] = None
        offset = header_len
        for index in range(num_tlvs):
            if offset + _TL.size > total_len:
                raise _BadPacket("TLV header past the end of the packet")
            tlv_type, length = _TL.unpack_from(packet, offset)
            offset += _TL.size
            if length > total_len - offset:
                raise _BadPacket(f"TLV {tlv_type} length {length} overruns the packet")
            if index == 0 and tlv_type not in KNOWN_TLVS:
                raise _BadPacket(f"unknown first TLV type {tlv_type} (wrong header layout?)")
            payload = packet[offset : offset + length]
            if tlv_type == TLV_DETECTED_POINTS:
                points = self._legacy_points(payload) if legacy_points else _float_points(payload)
            elif tlv_type == TLV_SIDE_INFO:
                if length % _SIDE_INFO.itemsize:
                    raise _BadPacket("side info length is not a multiple of 4")
                side = np.frombuffer(payload, dtype=_SIDE_INFO)
            elif tlv_type == TLV_STATS and length == _STATS.size:
                stats = dict(zip(STATS_FIELDS, _STATS.unpack(payload)))
            elif tlv_type not in KNOWN_TLVS:
                self.tlvs_unknown += 1
            offset += length
        if total_len - offset >= PACKET_ALIGN:
            raise _BadPacket("TLV walk ends more than 31 bytes before the packet end (wrong layout?)")
        if len(points) != num_obj and not (len(points) == 0 and num_obj == 0):
            raise _BadPacket(f"{len(points)} points in TLV 1 but numDetectedObj = {num_obj}")
        snr_db = noise_db = None
        if side is not None and len(side) == len(points):
            snr_db = side["snr"].astype(np.float32) * 0.1
            noise_db = side["noise"].astype(np.float32) * 0.1
        finite = np.isfinite(points).all(axis=1)
        if not finite.all():
            self.points_invalid += int((~finite).sum())
            points = points[finite]
            snr_db = snr_db[finite] if snr_db is not None else None
            noise_db = noise_db[finite] if noise_db is not None else None
        return RadarFrame(
            frame_number,
            version,
            platform,
            cycles,
            sub_frame,
            points,
            snr_db,
            noise_db,
            stats,
            total_len,
            t_ns,
        )

    def _legacy_points(self, payload: bytes) -> np.ndarray:
        """SDK 1.x/2.x fixed-point points: descriptor (count, xyzQFormat) then 12-byte entries."""
        if len(payload) < _LEGACY_DESCRIPTOR.size:
            raise _BadPacket("legacy point TLV shorter than its descriptor")
        count, q_format = _LEGACY_DESCRIPTOR.unpack_from(payload)
        body = payload[_LEGACY_DESCRIPTOR.size :]
        if len(body) != count * _LEGACY_POINT.itemsize or q_format > 15:
            raise _BadPacket("legacy point TLV length does not match its count")
        raw = np.frombuffer(body, dtype=_LEGACY_POINT)
        points = np.empty((count, 4), dtype=np.float32)
        points[:, :3] = raw["xyz"].astype(np.float32) / float(1 << q_format)
        points[:, 3] = raw["doppler"].astype(np.float32) * self.doppler_resolution_mps
        return points


def _magic_may_start(buf: bytearray, end: int) -> bool:
    """True when a magic word may start before ``end`` but runs past the bytes received.

    Positions whose 8 bytes are all in ``buf`` were searched already; this looks at the last 7
    positions only, where ``buf`` ends in a proper prefix of the magic word.
    """
    for start in range(max(1, len(buf) - len(MAGIC) + 1), min(end, len(buf))):
        if MAGIC.startswith(bytes(buf[start:])):
            return True
    return False


def _float_points(payload: bytes) -> np.ndarray:
    """SDK 3.x points: N x float32 {x, y, z, doppler}."""
    if len(payload) % 16:
        raise _BadPacket("point TLV length is not a multiple of 16")
    return np.frombuffer(payload, dtype="<f4").reshape(-1, 4).astype(np.float32)


def _tlv(tlv_type: int, payload: bytes) -> bytes:
    return _TL.pack(tlv_type, len(payload)) + payload


def build_packet(
    frame_number: int,
    points: np.ndarray,
    snr_db: Optional[np.ndarray] = None,
    noise_db: Optional[np.ndarray] = None,
    stats: Optional[Sequence[int]] = None,
    platform: int = 0xA6843,
    version: int = 0x03050004,
    time_cpu_cycles: int = 0,
    extra_tlvs: Sequence[Tuple[int, bytes]] = (),
    padding_byte: int = 0,
) -> bytes:
    """Encode one SDK 3.x packet (TLVs 1, 7, 6 then ``extra_tlvs``), padded to 32 bytes.

    ``points`` is (n, 4) x, y, z, doppler; TLV 1 is left out when n = 0, as most builds do.
    """
    points = np.asarray(points, dtype="<f4").reshape(-1, 4)
    tlvs = []
    if len(points):
        tlvs.append(_tlv(TLV_DETECTED_POINTS, points.tobytes()))
        if snr_db is not None and noise_db is not None:
            side = np.empty(len(points), dtype=_SIDE_INFO)
            side["snr"] = np.rint(np.asarray(snr_db) * 10.0)
            side["noise"] = np.rint(np.asarray(noise_db) * 10.0)
            tlvs.append(_tlv(TLV_SIDE_INFO, side.tobytes()))
    if stats is not None:
        tlvs.append(_tlv(TLV_STATS, _STATS.pack(*stats)))
    tlvs.extend(_tlv(t, payload) for t, payload in extra_tlvs)
    body = b"".join(tlvs)
    total = HEADER_BYTES + len(body)
    total += (-total) % PACKET_ALIGN
    header = _HEADER.pack(
        MAGIC, version, total, platform, frame_number, time_cpu_cycles & 0xFFFFFFFF, len(points), len(tlvs), 0
    )
    return header + body + bytes((padding_byte,)) * (total - HEADER_BYTES - len(body))

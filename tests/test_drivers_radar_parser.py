"""TI out-of-box demo packets: byte-exact fixture, TLVs, resync, cut packets, legacy layouts, fuzzing."""

import struct

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers import radar_ti_parser as rp

# SDK 3.5 packet, IWR6843, frame 7, one point (0.5, 2.0, -0.25, 1.0 m/s), no padding (64 bytes).
FIXTURE = bytes.fromhex(
    "0201040306050807"  # magic
    "04000503"  # version 3.5.0.4
    "40000000"  # totalPacketLen 64
    "43680a00"  # platform 0xA6843
    "07000000"  # frameNumber 7
    "78563412"  # timeCpuCycles
    "01000000"  # numDetectedObj 1
    "01000000"  # numTLVs 1
    "00000000"  # subFrameNumber
    "01000000"
    "10000000"  # TLV 1, 16 bytes
    "0000003f"
    "00000040"
    "000080be"
    "0000803f"  # x 0.5, y 2.0, z -0.25, doppler 1.0
)


def packet(number: int, n_points: int = 3, **kwargs) -> bytes:
    pts = np.arange(n_points * 4, dtype=np.float32).reshape(-1, 4) / 8.0
    return rp.build_packet(
        number, pts, snr_db=np.full(n_points, 15.0), noise_db=np.full(n_points, 31.5), **kwargs
    )


def test_fixture_is_what_build_packet_writes_and_parses_back() -> None:
    built = rp.build_packet(7, np.array([[0.5, 2.0, -0.25, 1.0]]), time_cpu_cycles=0x12345678)
    assert built == FIXTURE
    frames = rp.TiFrameParser().feed(FIXTURE, 123)
    assert len(frames) == 1
    frame = frames[0]
    assert (frame.frame_number, frame.platform, frame.version, frame.packet_bytes) == (
        7,
        0xA6843,
        0x03050004,
        64,
    )
    assert frame.time_cpu_cycles == 0x12345678 and frame.t_last_byte_ns == 123
    np.testing.assert_array_equal(frame.points, np.array([[0.5, 2.0, -0.25, 1.0]], dtype=np.float32))
    assert frame.snr_db is None and frame.stats is None


def test_side_info_stats_and_skipped_tlvs() -> None:
    data = packet(
        3, stats=(1, 2, 3, 4, 5, 6), extra_tlvs=[(9, bytes(28)), (2, bytes(256)), (42, b"\x01" * 8)]
    )
    parser = rp.TiFrameParser()
    frame = parser.feed(data, 0)[0]
    np.testing.assert_allclose(frame.snr_db, 15.0)
    np.testing.assert_allclose(frame.noise_db, 31.5)
    assert frame.stats["inter_frame_processing_time_us"] == 1 and frame.stats["inter_frame_cpu_load_pct"] == 6
    assert parser.tlvs_unknown == 1 and len(data) % 32 == 0


def test_zero_points_with_and_without_empty_tlv1() -> None:
    parser = rp.TiFrameParser()
    without = rp.build_packet(1, np.zeros((0, 4)))
    with_empty = rp.build_packet(2, np.zeros((0, 4)), extra_tlvs=[(1, b"")])
    frames = parser.feed(without + with_empty, 0)
    assert [f.points.shape for f in frames] == [(0, 4), (0, 4)]


def test_nonzero_padding_is_accepted() -> None:
    data = packet(4, n_points=1, padding_byte=0xA5)
    assert data[-1] == 0xA5
    assert len(rp.TiFrameParser().feed(data, 0)) == 1


def test_split_across_reads_at_every_offset() -> None:
    stream = packet(1) + packet(2)
    for cut in range(1, len(stream)):
        parser = rp.TiFrameParser()
        frames = parser.feed(stream[:cut], 1) + parser.feed(stream[cut:], 2)
        assert [f.frame_number for f in frames] == [1, 2], cut
        assert frames[-1].t_last_byte_ns == 2 and parser.bytes_skipped == 0


def test_garbage_between_packets() -> None:
    parser = rp.TiFrameParser()
    frames = parser.feed(b"\x00" * 13 + packet(1) + b"junk\x02\x01\x04" + packet(2), 0)
    assert [f.frame_number for f in frames] == [1, 2]
    assert parser.bytes_skipped == 13 + 7 and parser.frames_bad == 0


def test_partial_magic_at_end_is_kept() -> None:
    parser = rp.TiFrameParser()
    data = packet(5)
    assert parser.feed(b"\xff" * 20 + data[:5], 0) == []
    assert parser.feed(data[5:], 0)[0].frame_number == 5


def test_truncated_packet_does_not_swallow_the_next() -> None:
    parser = rp.TiFrameParser()
    cut = packet(1, n_points=20)[:70]
    frames = parser.feed(cut + packet(2), 0)
    assert [f.frame_number for f in frames] == [2]
    assert parser.frames_cut == 1 and parser.frames_bad == 1


def test_magic_inside_truncated_packet_detected_before_it_completes() -> None:
    parser = rp.TiFrameParser()
    first = packet(1, n_points=40)  # claims > 800 bytes
    second = packet(2)
    assert parser.feed(first[:100] + second, 0)[0].frame_number == 2


def test_implausible_headers_are_rejected() -> None:
    good = bytearray(packet(1))
    cases = {
        "version": (8, 0x09000000),
        "length not multiple of 32": (12, len(good) + 8),
        "length over 64 KiB": (12, 70000 * 32),
        "platform": (16, 0x12345),
        "num points": (28, 5000),
        "num tlvs": (32, 40),
    }
    for name, (offset, value) in cases.items():
        bad = bytearray(good)
        struct.pack_into("<I", bad, offset, value)
        parser = rp.TiFrameParser()
        frames = parser.feed(bytes(bad) + packet(2), 0)
        assert [f.frame_number for f in frames] == [2], name
        assert parser.frames_bad >= 1, name


def test_tlv_overrun_and_point_count_mismatch_are_bad() -> None:
    overrun = bytearray(packet(1))
    struct.pack_into("<I", overrun, 44, 4000)  # TLV 1 length past the packet end
    mismatch = bytearray(packet(1))
    struct.pack_into("<I", mismatch, 28, 2)  # numDetectedObj 2, TLV 1 holds 3
    for bad in (overrun, mismatch):
        parser = rp.TiFrameParser()
        assert [f.frame_number for f in parser.feed(bytes(bad) + packet(9), 0)] == [9]
        assert parser.frames_bad == 1


def test_non_finite_points_dropped() -> None:
    pts = np.array([[1.0, 2.0, 0.0, 0.0], [np.nan, 1.0, 0.0, 0.0]], dtype=np.float32)
    parser = rp.TiFrameParser()
    frame = parser.feed(rp.build_packet(1, pts, snr_db=np.ones(2), noise_db=np.ones(2)), 0)[0]
    assert frame.points.shape == (1, 4) and frame.snr_db.shape == (1,) and parser.points_invalid == 1


def legacy_packet(number: int, header_bytes: int) -> bytes:
    """SDK 2.x packet with fixed-point points: descriptor (count, Q9), then 12-byte entries."""
    body = struct.pack("<HH", 2, 9)
    body += struct.pack("<HhHhhh", 10, -3, 500, 256, 1024, -128)
    body += struct.pack("<HhHhhh", 11, 2, 400, -512, 512, 0)
    tlv = struct.pack("<II", 1, len(body)) + body
    total = header_bytes + len(tlv)
    total += (-total) % 32
    platform = 0xA1443 if header_bytes == 36 else 0xA1642
    fields = [0x02010004, total, platform, number, 0, 2, 1] + ([0] if header_bytes == 40 else [])
    header = rp.MAGIC + struct.pack(f"<{len(fields)}I", *fields)
    return header + tlv + bytes(total - header_bytes - len(tlv))


def test_legacy_layouts() -> None:
    for header_bytes in (36, 40):
        parser = rp.TiFrameParser(doppler_resolution_mps=0.1)
        frames = parser.feed(legacy_packet(5, header_bytes) + legacy_packet(6, header_bytes), 0)
        assert [f.frame_number for f in frames] == [5, 6], header_bytes
        np.testing.assert_allclose(
            frames[0].points, [[0.5, 2.0, -0.25, -0.3], [-1.0, 1.0, 0.0, 0.2]], atol=1e-6
        )


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=500), st.integers(min_value=1, max_value=97))
def test_fuzz_never_raises(data: bytes, chunk: int) -> None:
    parser = rp.TiFrameParser()
    for i in range(0, len(data), chunk):
        parser.feed(data[i : i + chunk], 0)
    assert parser.bytes_skipped <= len(data)


garbage = st.one_of(
    st.binary(max_size=200),
    st.tuples(st.binary(max_size=50), st.binary(max_size=80)).map(lambda ab: ab[0] + rp.MAGIC + ab[1]),
)


@settings(max_examples=300, deadline=None)
@given(garbage, st.lists(st.integers(0, 12), min_size=1, max_size=4), st.integers(min_value=1, max_value=200))
def test_fuzz_regains_sync_within_one_frame(junk: bytes, point_counts, chunk: int) -> None:
    packets = [packet(i + 1, n) for i, n in enumerate(point_counts)]
    stream = junk + b"".join(packets)
    parser = rp.TiFrameParser()
    frames = []
    for i in range(0, len(stream), chunk):
        frames += parser.feed(stream[i : i + chunk], 0)
    numbers = [f.frame_number for f in frames]
    # Every real packet is recovered, in order, even right after garbage holding a magic word.
    assert numbers[-len(packets) :] == list(range(1, len(packets) + 1))

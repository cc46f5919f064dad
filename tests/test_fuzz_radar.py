"""Fuzzing the TI mmWave data-port parser, the radar driver and the ``.cfg`` parser.

Properties beyond tests/test_drivers_radar_parser.py: every byte fed is either inside a returned
packet or counted as skipped; returned frames are well formed (finite float32 points, at most
``MAX_POINTS``, side info aligned with the points, 32-byte aligned packet lengths); packets built by
``build_packet`` survive any split into reads and any garbage between them that holds no magic word;
the driver's sequence numbers and counters stay consistent whatever the frame numbers do; and a
``.cfg`` text either parses or raises ``RadarConfigError``.
"""

import math
import struct

import numpy as np
import pytest
from fuzz_support import ScriptedPort, cut_positions, drain, fuzz_settings, split
from hypothesis import assume, example, given
from hypothesis import strategies as st

from drivers import radar_ti_parser as rp
from drivers.radar_ti import TiRadarDriver
from drivers.radar_ti_cli import DEFAULT_CFG, RadarCfg, RadarConfigError, parse_cfg

_coord = st.floats(-50.0, 50.0, allow_nan=False, width=32)
_points = st.lists(st.tuples(_coord, _coord, _coord, _coord), max_size=12).map(
    lambda rows: np.asarray(rows, dtype=np.float32).reshape(-1, 4)
)
_packet = st.builds(
    lambda number, points, with_side, with_stats, platform: rp.build_packet(
        number,
        points,
        snr_db=np.full(len(points), 12.5) if with_side else None,
        noise_db=np.full(len(points), 3.0) if with_side else None,
        stats=(1, 2, 3, 4, 5, 6) if with_stats else None,
        platform=platform,
    ),
    st.integers(0, 2**32 - 1),
    _points,
    st.booleans(),
    st.booleans(),
    st.sampled_from(sorted(rp.PLATFORMS - {0xA1443})),
)


def _mutate(packet: bytes, position: int, value: int) -> bytes:
    position %= len(packet)
    return packet[:position] + bytes((value,)) + packet[position + 1 :]


_piece = st.one_of(
    _packet,
    st.builds(_mutate, _packet, st.integers(0, 1 << 16), st.integers(0, 255)),  # one corrupted byte
    _packet.flatmap(lambda p: st.integers(1, len(p) - 1).map(lambda n: p[:n])),  # cut short
    st.binary(max_size=64),
    st.just(rp.MAGIC),
)
radar_stream = st.lists(_piece, max_size=8).map(b"".join)


def _feed(chunks):
    """Parse ``chunks`` as successive reads, then flush as the driver does when the stream pauses."""
    parser = rp.TiFrameParser()
    frames = [frame for index, chunk in enumerate(chunks) for frame in parser.feed(chunk, index)]
    return parser, frames + parser.flush()


def _outcome(parser, frames):
    """What must not depend on read boundaries: the frames and every counter."""
    parser.reset()
    counters = ("frames_ok", "frames_bad", "frames_cut", "bytes_skipped", "tlvs_unknown", "points_invalid")
    return [f.frame_number for f in frames], {name: getattr(parser, name) for name in counters}


@fuzz_settings(200)
@given(radar_stream, cut_positions)
def test_every_byte_is_in_a_frame_or_skipped_and_frames_are_well_formed(data: bytes, cuts) -> None:
    parser, frames = _feed(split(data, cuts))
    assert parser.frames_ok == len(frames)
    for frame in frames:
        assert frame.points.dtype == np.float32 and frame.points.ndim == 2 and frame.points.shape[1] == 4
        assert len(frame.points) <= rp.MAX_POINTS and np.all(np.isfinite(frame.points))
        assert frame.packet_bytes % rp.PACKET_ALIGN == 0 and frame.packet_bytes <= rp.MAX_PACKET_BYTES
        if frame.snr_db is not None:
            assert len(frame.snr_db) == len(frame.noise_db) == len(frame.points)
        if frame.stats is not None:
            assert set(frame.stats) == set(rp.STATS_FIELDS)
    consumed = sum(frame.packet_bytes for frame in frames)
    parser.reset()
    assert consumed + parser.bytes_skipped == len(data)


@fuzz_settings(150)
@given(
    st.lists(st.tuples(st.integers(0, 2**32 - 1), _points), min_size=1, max_size=5),
    st.lists(st.binary(max_size=80), max_size=5),
    cut_positions,
)
def test_packets_survive_garbage_and_any_split(packets, junk, cuts) -> None:
    assume(all(rp.MAGIC not in j for j in junk))
    stream = b""
    built = []
    for index, (number, points) in enumerate(packets):
        packet = rp.build_packet(number, points)
        assume(packet.count(rp.MAGIC) == 1)  # a float pattern equal to the magic word is not a packet start
        built.append((number, points))
        stream += (junk[index] if index < len(junk) else b"") + packet
    # Garbage ending in a prefix of the magic word must not hide the real one that follows.
    _, frames = _feed(split(stream, cuts))
    assert [f.frame_number for f in frames] == [number for number, _ in built]
    for frame, (_, points) in zip(frames, built):
        np.testing.assert_array_equal(frame.points, points)


@fuzz_settings(200)
@given(radar_stream, cut_positions)
def test_result_is_independent_of_read_boundaries(data: bytes, cuts) -> None:
    assert _outcome(*_feed(split(data, cuts))) == _outcome(*_feed([data]))


@st.composite
def _streams_with_lost_tails(draw):
    """Packets that may have lost their last 1..7 bytes, and reads ending where each claims to end."""
    stream, claimed_ends = b"", []
    for packet in draw(st.lists(_packet, min_size=1, max_size=5)):
        claimed_ends.append(len(stream) + len(packet))
        stream += packet[: len(packet) - draw(st.integers(0, 7))]
    cuts = draw(st.lists(st.sampled_from(claimed_ends), max_size=5)) + draw(cut_positions)
    return stream, [c % (len(stream) + 1) for c in cuts]


@fuzz_settings(150)
@given(_streams_with_lost_tails())
def test_lost_tails_give_the_same_result_whatever_the_read_boundaries(stream_and_cuts) -> None:
    stream, cuts = stream_and_cuts
    assert _outcome(*_feed(split(stream, cuts))) == _outcome(*_feed([stream]))


# Regression (found by split-invariance fuzzing): a packet missing its last byte swallowed the next
# magic word when a read ended right after the claimed length, and the next packet was lost.
@pytest.mark.parametrize("lost", [1, 3, 7])
def test_a_cut_packet_is_found_whatever_the_read_boundaries(lost: int) -> None:
    points = np.ones((2, 4), np.float32)
    first, second = rp.build_packet(1, points), rp.build_packet(2, points)
    stream = first[:-lost] + second  # the first packet lost its last bytes on the wire
    whole = _feed([stream])
    assert [f.frame_number for f in whole[1]] == [2] and whole[0].frames_cut == 1
    for cut in range(len(first) - lost, len(first) + 8):
        parser = rp.TiFrameParser()
        assert parser.feed(stream[:cut], 1) == []  # the packet is held, not accepted as complete
        frames = parser.feed(stream[cut:], 2)
        assert [f.frame_number for f in frames] == [2] and parser.frames_cut == 1, cut


def test_a_packet_ending_in_a_magic_prefix_waits_for_the_next_bytes() -> None:
    first = rp.build_packet(1, np.ones((2, 4), np.float32), padding_byte=rp.MAGIC[0])
    assert first.endswith(rp.MAGIC[:1])  # an intact packet whose padding looks like a magic start
    parser = rp.TiFrameParser()
    assert parser.feed(first, 100) == []
    assert parser.flush(100 + int(rp.HOLD_QUIET_S * 1e9) - 1) == []  # not quiet long enough yet
    second = rp.build_packet(2, np.zeros((0, 4), np.float32))
    frames = parser.feed(second, 200)  # the next packet's bytes decide: no magic inside packet 1
    assert [f.frame_number for f in frames] == [1, 2]
    assert [f.t_last_byte_ns for f in frames] == [100, 200]  # the read that completed each packet
    parser.feed(first, 300)
    (released,) = parser.flush(300 + int(rp.HOLD_QUIET_S * 1e9))  # the stream went quiet
    assert (released.frame_number, released.t_last_byte_ns, parser.frames_cut) == (1, 300, 0)


@fuzz_settings(80)
@given(st.lists(st.tuples(st.integers(0, 40), _points), max_size=10), st.binary(max_size=40), cut_positions)
def test_driver_sequence_and_counters_stay_consistent(frames, junk, cuts) -> None:
    stream = junk + b"".join(rp.build_packet(number, points) for number, points in frames)
    port = ScriptedPort(split(stream, cuts))
    driver = TiRadarDriver(
        "fuzz://radar-data",
        configure=False,
        frame_period_s=0.05,
        max_points=5,
        serial_factory=lambda *a, **k: port,
    )
    driver.open()
    try:
        samples = drain(driver, port)
    finally:
        driver.close()
    counters = driver.counters
    assert len(samples) == counters["frames_ok"] - counters["frames_repeated"]
    assert counters["frames_over_budget"] == sum(len(s.data) > 5 for s in samples)
    for sample in samples:
        assert sample.data.dtype == np.float32 and sample.data.shape[1:] == (4,)
        assert sample.t_device_s is not None and sample.t_device_s >= 0 and math.isfinite(sample.t_device_s)
    for before, after in zip(samples, samples[1:]):
        assert after.seq != before.seq  # a repeated frame number is dropped, not emitted twice


# ----------------------------------------------------------------------------- chirp .cfg files

_CFG_LINES = DEFAULT_CFG.read_text(encoding="ascii").splitlines()
_number_text = st.one_of(
    st.integers(-(10**6), 10**6).map(str),
    st.floats(allow_nan=False, allow_infinity=False, width=32).map(repr),
    st.sampled_from(["0", "-1", "1e9", "0x10", "", "abc", "nan", "inf", "-inf", "1e400"]),
)


@st.composite
def _cfg_texts(draw) -> str:
    """The shipped profile with some lines dropped, duplicated or given other arguments."""
    lines = list(_CFG_LINES)
    for _ in range(draw(st.integers(0, 6))):
        index = draw(st.integers(0, len(lines) - 1))
        action = draw(st.sampled_from(["drop", "dup", "args", "junk"]))
        if action == "drop":
            del lines[index]
        elif action == "dup":
            lines.insert(index, lines[index])
        elif action == "args":
            words = lines[index].split()[:1] + draw(st.lists(_number_text, max_size=14))
            lines[index] = " ".join(words)
        else:
            lines[index] = draw(st.text(max_size=40))
        if not lines:
            break
    return "\n".join(lines)


# Regressions (found by this suite): numbers that parse as floats but break the arithmetic (nan,
# inf, a zero chirp time) escaped as ValueError / OverflowError / ZeroDivisionError instead of a
# RadarConfigError naming the .cfg line.
_BASE = "\n".join(_CFG_LINES)
_FRAME_LINE = 1 + next(i for i, line in enumerate(_CFG_LINES) if line.startswith("frameCfg"))
_PROFILE_LINE = 1 + next(i for i, line in enumerate(_CFG_LINES) if line.startswith("profileCfg"))


@pytest.mark.parametrize(
    "text, line",
    [
        (_BASE.replace("frameCfg 0 2 32", "frameCfg 0 2 nan"), _FRAME_LINE),
        (_BASE.replace("frameCfg 0 2 32", "frameCfg 0 2 inf"), _FRAME_LINE),
        (_BASE.replace("frameCfg 0 2 32 0 50", "frameCfg 0 2 32 0 -inf"), _FRAME_LINE),
        (_BASE.replace("frameCfg 0 2 32", "frameCfg 0 2 0"), _FRAME_LINE),
        (
            _BASE.replace("profileCfg 0 60 7 6 60", "profileCfg 0 0 0 6 0").replace("60 1 128", "0 1 128"),
            _PROFILE_LINE,
        ),
        (_BASE.replace("profileCfg 0 60 7 6 60", "profileCfg 0 60 -60 6 60"), _PROFILE_LINE),
    ],
    ids=["nan-loops", "inf-loops", "minus-inf-period", "zero-loops", "zero-chirp", "zero-chirp-time"],
)
def test_unusable_numbers_raise_radar_config_error_naming_the_line(text: str, line: int) -> None:
    with pytest.raises(RadarConfigError, match=f"^fuzz.cfg:{line}: "):
        parse_cfg(text, "fuzz.cfg")


@fuzz_settings(200)
@given(_cfg_texts())
@example("")
@example("% only a comment")
def test_cfg_parses_or_raises_radar_config_error(text: str) -> None:
    try:
        cfg = parse_cfg(text, "fuzz.cfg")
    except RadarConfigError as exc:
        assert "fuzz.cfg" in str(exc)
        return
    assert isinstance(cfg, RadarCfg)
    assert all(line.split()[0] not in ("sensorStop", "flushCfg", "sensorStart") for line in cfg.commands)
    assert len(cfg.gui_monitor) == 6


def test_header_struct_matches_the_spec() -> None:
    # Guards the fuzz strategies above: a built packet starts with the 40-byte SDK 3.x header.
    packet = rp.build_packet(7, np.zeros((2, 4), np.float32))
    magic, version, total, platform, number = struct.unpack_from("<8sIIII", packet)
    assert (magic, total, number) == (rp.MAGIC, len(packet), 7) and platform in rp.PLATFORMS

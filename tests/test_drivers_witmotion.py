"""WitMotion WT901 frames: byte-exact fixtures, resync, checksum handling, cycles, fuzzing."""

import datetime

import numpy as np
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from drivers import imu_witmotion as wm

# Acceleration frame: ax = 78, ay = 56, az = 2016 counts, temperature 3342 (33.42 degC); checksum 0x2E.
ACC_FRAME = bytes.fromhex("55514e003800e0070e0d2e")
# Angular rate: gx = -100, gy = 0, gz = 16384 counts, w3 = 0; checksum = sum & 0xFF.
GYRO_FRAME = bytes.fromhex("55529cff000000400000") + bytes([(0x55 + 0x52 + 0x9C + 0xFF + 0x40) & 0xFF])
# Angles: roll = 8192 (45 deg), pitch = -8192, yaw = 0.
ANGLE_FRAME = bytes.fromhex("5553002000e000000000") + bytes([(0x55 + 0x53 + 0x20 + 0xE0) & 0xFF])


def test_fixture_checksum_and_decoding() -> None:
    assert wm.build_frame(0x51, ACC_FRAME[2:10]) == ACC_FRAME
    frames = wm.WitMotionParser().feed(ACC_FRAME)
    assert frames == [wm.WitFrame(0x51, ACC_FRAME[2:10])]
    acc = wm.decode_words(frames[0].payload, wm.ACC_FULL_SCALE_G)
    np.testing.assert_allclose(acc, [78 / 2048, 56 / 2048, 2016 / 2048])
    gyro = wm.decode_words(GYRO_FRAME[2:10], wm.GYRO_FULL_SCALE_DPS)
    np.testing.assert_allclose(gyro, [-100 * 2000 / 32768, 0.0, 1000.0])


def test_frames_split_across_reads_at_every_offset() -> None:
    stream = ACC_FRAME + GYRO_FRAME + ANGLE_FRAME
    for cut in range(1, len(stream)):
        parser = wm.WitMotionParser()
        frames = parser.feed(stream[:cut]) + parser.feed(stream[cut:])
        assert [f.frame_type for f in frames] == [0x51, 0x52, 0x53], cut
        assert parser.frames_bad == 0 and parser.bytes_skipped == 0


def test_garbage_between_frames_is_skipped_and_counted() -> None:
    parser = wm.WitMotionParser()
    frames = parser.feed(b"\x00\x01\x02" + ACC_FRAME + b"\xaa\xbb" + GYRO_FRAME)
    assert [f.frame_type for f in frames] == [0x51, 0x52]
    assert parser.bytes_skipped == 5 and parser.frames_bad == 0


def test_bad_checksum_counts_and_resyncs_byte_by_byte() -> None:
    corrupt = bytearray(ACC_FRAME)
    corrupt[10] ^= 0xFF
    parser = wm.WitMotionParser()
    frames = parser.feed(bytes(corrupt) + GYRO_FRAME)
    assert [f.frame_type for f in frames] == [0x52]
    assert parser.frames_bad == 1
    assert parser.bytes_skipped == 11


def test_unknown_type_is_bad() -> None:
    parser = wm.WitMotionParser()
    assert parser.feed(wm.build_frame(0x60, bytes(8))) == []
    assert parser.frames_bad == 1


def test_truncated_frame_then_full_frame() -> None:
    parser = wm.WitMotionParser()
    frames = parser.feed(ACC_FRAME[:6] + GYRO_FRAME)
    # The cut frame's header is tried against the next bytes, fails, and the parser resyncs.
    assert [f.frame_type for f in frames] == [0x52]
    assert parser.frames_bad >= 1


def test_partial_frame_waits_for_more_bytes() -> None:
    parser = wm.WitMotionParser()
    assert parser.feed(ACC_FRAME[:10]) == []
    assert parser.frames_bad == 0
    assert len(parser.feed(ACC_FRAME[10:])) == 1


def test_assembler_emits_on_angle_frame_with_chip_time() -> None:
    when = datetime.datetime(2024, 5, 6, 7, 8, 9, 250000)
    asm = wm.WitMotionAssembler(use_time=True)
    parser = wm.WitMotionParser()
    stream = wm.build_frame(0x50, wm.time_payload(when)) + ACC_FRAME + GYRO_FRAME + ANGLE_FRAME
    readings = [asm.add(f) for f in parser.feed(stream)]
    assert readings[:3] == [None, None, None]
    reading = readings[3]
    assert reading is not None and reading.values.dtype == np.float32
    np.testing.assert_allclose(reading.values[:3], [78 / 2048, 56 / 2048, 2016 / 2048], rtol=1e-6)
    expected_s = (when - datetime.datetime(2000, 1, 1)).total_seconds()
    assert abs(reading.t_device_s - expected_s) < 1e-6
    np.testing.assert_allclose(asm.last_angles_deg, [45.0, -45.0, 0.0])


def test_assembler_counts_incomplete_cycle() -> None:
    asm = wm.WitMotionAssembler()
    frames = wm.WitMotionParser().feed(ACC_FRAME + ANGLE_FRAME + ACC_FRAME + GYRO_FRAME + ANGLE_FRAME)
    readings = [r for r in (asm.add(f) for f in frames) if r is not None]
    assert len(readings) == 1 and asm.cycles_incomplete == 1
    assert readings[0].t_device_s is None


def test_impossible_chip_date_is_counted() -> None:
    asm = wm.WitMotionAssembler(use_time=True)
    bad_time = wm.build_frame(0x50, bytes([24, 13, 40, 0, 0, 0, 0, 0]))
    frames = wm.WitMotionParser().feed(bad_time + ACC_FRAME + GYRO_FRAME + ANGLE_FRAME)
    reading = [r for r in (asm.add(f) for f in frames) if r is not None][0]
    assert reading.t_device_s is None and asm.time_bad == 1


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400), st.integers(min_value=1, max_value=64))
def test_fuzz_never_raises(data: bytes, chunk: int) -> None:
    parser = wm.WitMotionParser()
    total = 0
    for i in range(0, len(data), chunk):
        total += len(parser.feed(data[i : i + chunk]))
    assert parser.frames_ok == total
    assert parser.bytes_skipped <= len(data)


frame_payloads = st.lists(
    st.tuples(st.sampled_from([0x51, 0x52, 0x53]), st.binary(min_size=8, max_size=8)), min_size=2, max_size=6
)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=60), frame_payloads, st.integers(min_value=1, max_value=23))
def test_fuzz_regains_sync_within_one_frame(garbage: bytes, payloads, chunk: int) -> None:
    frames = [wm.build_frame(t, p) for t, p in payloads]
    # Frames whose body holds no 0x55 cannot start a false frame themselves.
    assume(all(0x55 not in f[1:] for f in frames))
    stream = garbage + b"".join(frames)
    parser = wm.WitMotionParser()
    got = []
    for i in range(0, len(stream), chunk):
        got += [wm.build_frame(f.frame_type, f.payload) for f in parser.feed(stream[i : i + chunk])]
    # Every frame after the first is recovered; the first too unless garbage swallowed its start.
    assert got[-(len(frames) - 1) :] == frames[1:]
    if 0x55 not in garbage[-10:]:
        assert got[-len(frames) :] == frames

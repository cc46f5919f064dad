"""Fuzzing the WitMotion byte parser, cycle assembler and IMU driver: no exception, every byte accounted.

Beyond tests/test_drivers_witmotion.py (never raises, regains sync): the result must not depend on
how the bytes were split into reads, every byte fed is either part of a returned frame or counted
as skipped, returned frames are well formed, and the driver on top turns any byte stream into
finite, in-range samples with consecutive sequence numbers.
"""

import math

import numpy as np
from fuzz_support import ScriptedPort, cut_positions, drain, fuzz_settings, split
from hypothesis import given
from hypothesis import strategies as st

from drivers import imu_witmotion as wm
from drivers.imu_serial import ImuSerialDriver

# Pieces of a plausible stream: noise, valid frames of any type byte, frames cut short, bad checksums.
_frame = st.builds(wm.build_frame, st.integers(0x50, 0x5F), st.binary(min_size=8, max_size=8))
_piece = st.one_of(
    st.binary(max_size=24),
    _frame,
    _frame.flatmap(lambda f: st.integers(1, 10).map(lambda n: f[:n])),
    _frame.map(lambda f: f[:10] + bytes(((f[10] + 1) & 0xFF,))),
    st.just(b"\x55"),
)
witmotion_stream = st.lists(_piece, max_size=40).map(b"".join)


def _parse(chunks):
    parser = wm.WitMotionParser()
    frames = [frame for chunk in chunks for frame in parser.feed(chunk)]
    return parser, frames


@fuzz_settings(250)
@given(witmotion_stream, cut_positions)
def test_parser_is_split_invariant_and_accounts_for_every_byte(data: bytes, cuts) -> None:
    whole, frames = _parse([data])
    parts, frames_split = _parse(split(data, cuts))
    assert frames_split == frames
    assert (parts.frames_ok, parts.frames_bad, parts.bytes_skipped) == (
        whole.frames_ok,
        whole.frames_bad,
        whole.bytes_skipped,
    )
    assert parts.frames_ok == len(frames)
    for frame in frames:
        assert frame.frame_type in wm.KNOWN_TYPES and len(frame.payload) == 8
        rebuilt = wm.build_frame(frame.frame_type, frame.payload)
        assert rebuilt in data  # a frame is always a checksum-valid 11-byte run of the input
    parts.reset()  # what was still buffered counts as skipped
    assert wm.FRAME_BYTES * parts.frames_ok + parts.bytes_skipped == len(data)
    assert parts.feed(wm.build_frame(wm.TYPE_ACC, bytes(8))) == [wm.WitFrame(wm.TYPE_ACC, bytes(8))]


@fuzz_settings(200)
@given(
    witmotion_stream,
    st.sampled_from([wm.TYPE_ACC, wm.TYPE_GYRO, wm.TYPE_ANGLE, wm.TYPE_QUATERNION]),
    st.booleans(),
)
def test_assembler_emits_only_finite_in_range_readings(data: bytes, emit_type: int, use_time: bool) -> None:
    _, frames = _parse([data])
    assembler = wm.WitMotionAssembler(emit_type, use_time)
    readings = [r for r in (assembler.add(f) for f in frames) if r is not None]
    assert len(readings) <= sum(f.frame_type == emit_type for f in frames)
    for reading in readings:
        assert reading.values.shape == (6,) and reading.values.dtype == np.float32
        assert np.all(np.abs(reading.values[:3]) <= wm.ACC_FULL_SCALE_G)
        assert np.all(np.abs(reading.values[3:]) <= wm.GYRO_FULL_SCALE_DPS)
        if reading.t_device_s is not None:
            assert use_time and math.isfinite(reading.t_device_s) and reading.t_device_s >= 0
    assert assembler.frames_other == sum(
        f.frame_type not in range(0x50, 0x54) and f.frame_type != 0x59 for f in frames
    )


@fuzz_settings(100)
@given(witmotion_stream, cut_positions, st.booleans())
def test_driver_turns_any_stream_into_consistent_samples(data: bytes, cuts, use_time: bool) -> None:
    port = ScriptedPort(split(data, cuts))
    driver = ImuSerialDriver(
        "fuzz://imu", protocol="witmotion", witmotion_use_time=use_time, serial_factory=lambda *a, **k: port
    )
    driver.open()
    try:
        samples = drain(driver, port)
    finally:
        driver.close()
    _, frames = _parse([data])
    assert [s.seq for s in samples] == list(range(len(samples)))
    counters = driver.counters
    assert counters["samples"] == len(samples)
    assert counters["frames_ok"] == len(frames)
    for sample in samples:
        assert sample.stream == "imu" and sample.data.shape == (6,) and np.all(np.isfinite(sample.data))
        assert isinstance(sample.t_host_ns, int)

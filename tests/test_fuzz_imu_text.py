"""Fuzzing the text IMU line parser (``a/g:`` and timestamped lines) and the driver on top of it.

Properties: no exception for any bytes; the outcome does not depend on how the bytes were split into
reads; decoded counts are int16, ``t_us`` is u32; every data line is either decoded or counted bad
(``line_index == frames_ok + frames_bad``); valid lines between garbage lines are all recovered.
"""

import numpy as np
from fuzz_support import ScriptedPort, cut_positions, drain, fuzz_settings, split
from hypothesis import given
from hypothesis import strategies as st

from drivers import imu_text as it
from drivers.imu_serial import ImuSerialDriver

PROTOCOLS = (it.PROTOCOL_AG, it.PROTOCOL_TIMESTAMPED)
_count = st.integers(it.INT16_MIN, it.INT16_MAX)
_counts = st.tuples(_count, _count, _count, _count, _count, _count)
_t_us = st.integers(0, (1 << 32) + 1000)  # past the wrap too: the line carries t_us mod 2^32
_good_line = st.one_of(
    st.builds(it.format_timestamped_line, _t_us, _counts),
    st.builds(it.format_ag_line, _counts),
)
_piece = st.one_of(
    _good_line,
    _good_line.flatmap(lambda line: st.integers(0, len(line)).map(lambda n: line[:n])),  # cut short
    _good_line.map(lambda line: line.replace(b"*", b"*F", 1)),  # bad checksum field
    st.binary(max_size=40),
    st.sampled_from(
        [b"\r\n", b"\n", b"a/g:\t1\t2\n", b"x" * 300 + b"\n", b"MPU6050 connection successful\r\n"]
    ),
)
text_stream = st.lists(_piece, max_size=30).map(b"".join)


def _parse(protocol: str, chunks, resync_first: bool = False):
    parser = it.TextLineParser(protocol)
    if resync_first:
        parser.resync()
    readings = [r for chunk in chunks for r in parser.feed(chunk)]
    return parser, readings


def _state(parser: it.TextLineParser):
    return (parser.frames_ok, parser.frames_bad, parser.lines_other, parser.bytes_skipped, parser.line_index)


@fuzz_settings(250)
@given(st.sampled_from(PROTOCOLS), text_stream, cut_positions, st.booleans())
def test_parser_is_split_invariant_and_readings_are_in_range(protocol, data, cuts, resync_first) -> None:
    whole, readings = _parse(protocol, [data], resync_first)
    parts, readings_split = _parse(protocol, split(data, cuts), resync_first)
    assert readings_split == readings
    assert _state(parts) == _state(whole)
    assert parts.frames_ok == len(readings)
    assert parts.line_index == parts.frames_ok + parts.frames_bad
    assert parts.bytes_skipped <= len(data)
    indices = [r.line_index for r in readings]
    assert indices == sorted(set(indices))
    for reading in readings:
        assert len(reading.counts) == 6
        assert all(it.INT16_MIN <= c <= it.INT16_MAX for c in reading.counts)
        if protocol == it.PROTOCOL_AG:
            assert reading.t_us is None
        else:
            assert reading.t_us is not None and 0 <= reading.t_us < it.U32_MODULUS


@fuzz_settings(150)
@given(
    st.lists(st.tuples(_t_us, _counts), min_size=1, max_size=8),
    st.lists(
        st.binary(max_size=30).map(lambda b: b.replace(b"\n", b"").replace(b"*", b"") + b"\n"), max_size=8
    ),
    cut_positions,
)
def test_valid_lines_between_garbage_lines_are_all_recovered(lines, junk, cuts) -> None:
    stream = b""
    for index, (t_us, counts) in enumerate(lines):
        if index < len(junk):
            stream += junk[index]
        stream += it.format_timestamped_line(t_us, counts)
    _, readings = _parse(it.PROTOCOL_TIMESTAMPED, split(stream, cuts))
    assert [(r.t_us, r.counts) for r in readings] == [(t % it.U32_MODULUS, c) for t, c in lines]


@fuzz_settings(80)
@given(st.sampled_from(PROTOCOLS), text_stream, cut_positions)
def test_driver_samples_are_finite_and_within_full_scale(protocol, data, cuts) -> None:
    port = ScriptedPort(split(data, cuts))
    driver = ImuSerialDriver(
        "fuzz://imu", protocol=protocol, accel_fs_g=16, gyro_fs_dps=2000, serial_factory=lambda *a, **k: port
    )
    driver.open()
    try:
        samples = drain(driver, port)
    finally:
        driver.close()
    assert [s.seq for s in samples] == list(range(len(samples)))
    assert driver.counters["samples"] == driver.counters["frames_ok"] == len(samples)
    for sample in samples:
        assert sample.data.shape == (6,) and sample.data.dtype == np.float32
        assert np.all(np.abs(sample.data[:3]) <= 16.0) and np.all(np.abs(sample.data[3:]) <= 2000.0)
        assert sample.t_device_s is not None and np.isfinite(sample.t_device_s) and sample.t_device_s >= 0

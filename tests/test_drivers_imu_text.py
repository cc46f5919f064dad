"""MPU-6050 ``a/g:`` lines and the timestamped ``t_us,...*HH`` line: fixtures, rules, fuzzing."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers import imu_text as it

# The MPU6050_raw sketch's output, byte for byte (banner, then TAB-separated counts and CR LF).
AG_STREAM = (
    b"Initializing I2C devices...\r\n"
    b"Testing device connections...\r\n"
    b"MPU6050 connection successful\r\n"
    b"a/g:\t-1024\t512\t16384\t131\t-262\t0\r\n"
    b"a/g:\t0\t0\t-16384\t0\t0\t32767\r\n"
)
# XOR of "123456,1,-2,3,-4,5,-6" is 0x2D (worked by hand: 0x31 ^ 0x32 ^ ... ^ 0x36).
TS_LINE = b"123456,1,-2,3,-4,5,-6*2D\r\n"


def test_ag_fixture_banner_and_values() -> None:
    parser = it.TextLineParser(it.PROTOCOL_AG)
    readings = parser.feed(AG_STREAM)
    assert [r.counts for r in readings] == [(-1024, 512, 16384, 131, -262, 0), (0, 0, -16384, 0, 0, 32767)]
    assert parser.lines_other == 3 and parser.frames_bad == 0 and parser.frames_ok == 2
    values = it.counts_to_units(readings[0].counts, 2, 250)
    np.testing.assert_allclose(values, [-1024 / 16384, 512 / 16384, 1.0, 1.0, -2.0, 0.0], rtol=1e-6)
    assert values.dtype == np.float32
    assert [r.line_index for r in readings] == [0, 1]


def test_timestamped_fixture_checksum() -> None:
    assert it.format_timestamped_line(123456, (1, -2, 3, -4, 5, -6)) == TS_LINE
    assert it.xor_checksum(b"123456,1,-2,3,-4,5,-6") == 0x2D
    readings = it.TextLineParser(it.PROTOCOL_TIMESTAMPED).feed(TS_LINE)
    assert readings == [it.TextReading((1, -2, 3, -4, 5, -6), 123456, 0)]


def test_timestamped_lowercase_hex_and_lf_only_accepted() -> None:
    line = b"7,0,0,0,0,0,0*" + b"%02x" % it.xor_checksum(b"7,0,0,0,0,0,0") + b"\n"
    assert len(it.TextLineParser(it.PROTOCOL_TIMESTAMPED).feed(line)) == 1


def test_bad_checksum_and_out_of_range_are_bad_not_fatal() -> None:
    parser = it.TextLineParser(it.PROTOCOL_TIMESTAMPED)
    bad_sum = TS_LINE.replace(b"*2D", b"*2E")
    out_of_range = it.format_timestamped_line(5, (40000, 0, 0, 0, 0, 0))
    too_big_time = b"4294967296,0,0,0,0,0,0*" + b"%02X" % it.xor_checksum(b"4294967296,0,0,0,0,0,0") + b"\r\n"
    readings = parser.feed(bad_sum + out_of_range + too_big_time + TS_LINE)
    assert len(readings) == 1 and parser.frames_bad == 3
    assert readings[0].line_index == 3  # bad lines advance the index


def test_ag_rules() -> None:
    parser = it.TextLineParser(it.PROTOCOL_AG)
    lines = [
        b"a/g:\t1\t2\t3\t4\t5\r\n",  # five values
        b"a/g:\t1\t2\t3\t4\t5\t99999\r\n",  # out of int16
        b"a/g:\t1\t2\t3\t4\t5\t6\t7\r\n",  # seven values
        b"a/g: 1 2 3 4 5 6\r\n",  # spaces, not tabs
        b"a/g:\t1\t2\t3\t4\t5\t\xff\r\n",  # not ASCII
        b"a/g:\t1_0\t2\t3\t4\t5\t6\r\n",  # int() would accept this; the line rules do not
        b"a/g:\t1\t2\t3\t4\t5\t6\r\n",
    ]
    readings = parser.feed(b"".join(lines))
    assert [r.counts for r in readings] == [(1, 2, 3, 4, 5, 6)]
    assert parser.frames_bad == 6


def test_overlong_line_dropped_and_stream_continues() -> None:
    parser = it.TextLineParser(it.PROTOCOL_TIMESTAMPED)
    assert parser.feed(b"9" * 300) == []
    assert parser.frames_bad == 1
    assert parser.feed(b"9" * 100) == []
    readings = parser.feed(b"\r\n" + TS_LINE)
    assert len(readings) == 1 and parser.frames_bad == 1
    terminated = b"1" * 300 + b"\r\n"
    assert parser.feed(terminated + TS_LINE)[0].t_us == 123456
    assert parser.frames_bad == 2


def test_lines_split_across_reads_at_every_offset() -> None:
    stream = TS_LINE * 3
    for cut in range(1, len(stream)):
        parser = it.TextLineParser(it.PROTOCOL_TIMESTAMPED)
        assert len(parser.feed(stream[:cut]) + parser.feed(stream[cut:])) == 3, cut


def test_partial_first_line_after_open_counts_as_other() -> None:
    parser = it.TextLineParser(it.PROTOCOL_TIMESTAMPED)
    parser.resync()
    readings = parser.feed(TS_LINE[7:] + TS_LINE)
    assert len(readings) == 1 and parser.frames_bad == 0 and parser.lines_other == 1
    parser.resync()
    assert len(parser.feed(TS_LINE)) == 1  # opened on a line boundary: nothing lost


def test_units_round_trip_saturates() -> None:
    values = np.array([[0.5, -3.0, 1.0, 100.0, -300.0, 0.0]])
    counts = it.units_to_counts(values, 2, 250)
    assert counts.tolist() == [[8192, -32768, 16384, 13100, -32768, 0]]


@settings(max_examples=300, deadline=None)
@given(
    st.binary(max_size=600),
    st.integers(min_value=1, max_value=80),
    st.sampled_from(["mpu6050_text", "timestamped_text"]),
)
def test_fuzz_never_raises(data: bytes, chunk: int, protocol: str) -> None:
    parser = it.TextLineParser(protocol)
    got = 0
    for i in range(0, len(data), chunk):
        got += len(parser.feed(data[i : i + chunk]))
    assert got == parser.frames_ok


counts = st.tuples(*[st.integers(min_value=-32768, max_value=32767)] * 6)


@settings(max_examples=200, deadline=None)
@given(
    st.binary(max_size=400), st.lists(st.tuples(st.integers(0, 2**32 - 1), counts), min_size=1, max_size=5)
)
def test_fuzz_regains_sync_at_next_line(garbage: bytes, samples) -> None:
    lines = [it.format_timestamped_line(t, c) for t, c in samples]
    parser = it.TextLineParser(it.PROTOCOL_TIMESTAMPED)
    readings = parser.feed(garbage + b"\n" + b"".join(lines))
    assert [(r.t_us, r.counts) for r in readings[-len(lines) :]] == [(t, tuple(c)) for t, c in samples]

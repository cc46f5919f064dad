"""Shared settings and strategies of the fuzz suite (tests/test_fuzz_*.py).

Budget: the whole suite must finish in well under 60 s on a 2-core CI machine, so every test takes
``fuzz_settings(n)`` with a per-example ``deadline`` (an example that is slow on its own is a bug:
input of a few kB must parse in milliseconds) and a modest ``max_examples``. Failures print a
reproduction blob (``@reproduce_failure``); hypothesis also keeps failing examples in
``.hypothesis/`` and replays them first on the next run. For a deeper run (nightly, or after
changing a parser) scale every test's examples: ``COSMO_FUZZ_SCALE=50 pytest tests/test_fuzz_*.py``.
"""

import os
from datetime import timedelta
from typing import List, Sequence

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

DEADLINE = timedelta(milliseconds=1000)
SCALE = max(1, int(os.environ.get("COSMO_FUZZ_SCALE", "1")))


def fuzz_settings(max_examples: int) -> settings:
    """Settings for one fuzz test: ``max_examples`` (times ``COSMO_FUZZ_SCALE``), each within ``DEADLINE``."""
    return settings(
        max_examples=max_examples * SCALE,
        deadline=DEADLINE,
        print_blob=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


# Cut positions for splitting one byte string into reads, as a serial port delivers them.
cut_positions = st.lists(st.integers(min_value=0, max_value=1 << 16), max_size=12)


def split(data: bytes, cuts: Sequence[int]) -> List[bytes]:
    """``data`` cut at ``cuts`` (taken modulo its length + 1, sorted); empty reads included."""
    points = sorted(c % (len(data) + 1) for c in cuts)
    edges = [0, *points, len(data)]
    return [data[a:b] for a, b in zip(edges[:-1], edges[1:])]


class ScriptedPort:
    """A pyserial stand-in that hands out ``chunks`` one read at a time, then nothing.

    It has no ``fileno`` (so ``drivers.serial_port.SerialLink`` polls it) and its path should
    contain ``://`` (so the link does not look for it on disk). Bytes queued before the driver
    opened it are kept: ``reset_input_buffer`` only counts calls.
    """

    def __init__(self, chunks: Sequence[bytes]) -> None:
        self._chunks = list(chunks)
        self.timeout = None
        self.resets = 0

    @property
    def exhausted(self) -> bool:
        """True when every chunk was read."""
        return not self._chunks

    @property
    def in_waiting(self) -> int:
        return len(self._chunks[0]) if self._chunks else 0

    def read(self, size: int = 1) -> bytes:
        if not self._chunks:
            return b""
        chunk = self._chunks.pop(0)
        if len(chunk) > size:
            self._chunks.insert(0, chunk[size:])
            chunk = chunk[:size]
        return chunk

    def reset_input_buffer(self) -> None:
        self.resets += 1

    def write(self, data: bytes) -> int:
        return len(data)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


def drain(driver, port: ScriptedPort) -> list:
    """Every sample ``driver.read(0)`` yields until ``port`` has nothing left."""
    samples = []
    while True:
        sample = driver.read(0.0)
        if sample is not None:
            samples.append(sample)
        elif port.exhausted:
            return samples

"""The per-stream ring: range reads, drop counting, and reads racing the writer (no torn rows)."""

import sys
import threading
from typing import List

import numpy as np
import pytest

from cosmo_edge.ring import MAX_READ_TRIES, Ring


def filled(capacity: int, n: int, shape=(3,)) -> Ring:
    """A ring with samples i = 0..n-1 at t = 1000 * (i + 1), every value of row i equal to i."""
    ring = Ring(capacity, shape)
    for i in range(n):
        assert ring.write(1000 * (i + 1), np.full(shape, i, np.float32))
    return ring


def test_read_range_is_inclusive_and_copies() -> None:
    ring = filled(10, 6)
    ts, data = ring.read_range(2000, 4000)
    assert ts.tolist() == [2000, 3000, 4000]
    assert data[:, 0].tolist() == [1, 2, 3]
    data[:] = -1  # a copy: the ring is unchanged
    assert ring.read_range(2000, 2000)[1][0, 0] == 1
    empty_ts, empty = ring.read_range(6500, 9000)
    assert empty_ts.shape == (0,) and empty.shape == (0, 3)


def test_wraparound_keeps_the_newest_capacity_samples() -> None:
    ring = filled(5, 12)
    ts, data = ring.read_range(0, 10**9)
    assert ts.tolist() == [8000, 9000, 10000, 11000, 12000]
    assert data[:, 0].tolist() == [7, 8, 9, 10, 11]
    assert ring.counters["overwritten_unread"] == 7, "nothing was read before being overwritten"
    assert ring.count == 12 and ring.newest_ns == 12000


def test_late_and_duplicate_samples_are_dropped_and_counted() -> None:
    ring = filled(4, 2)
    assert not ring.write(1500, np.zeros(3))
    assert not ring.write(2000, np.zeros(3))
    assert ring.counters["late"] == 2 and ring.drops == 2
    assert ring.read_range(0, 10**9)[0].tolist() == [1000, 2000]


def test_overwriting_data_already_read_is_not_a_drop() -> None:
    ring = filled(4, 4)
    ring.read_range(0, 4000)
    for i in range(4, 8):
        ring.write(1000 * (i + 1), np.full(3, i, np.float32))
    assert ring.counters["overwritten_unread"] == 0
    ring.write(9000, np.zeros(3))  # evicts sample 4 (t=5000), never read
    assert ring.counters["overwritten_unread"] == 1


def test_pick_copies_only_the_chosen_rows() -> None:
    ring = filled(20, 10)
    seen: List[np.ndarray] = []

    def every_other(stamps: np.ndarray) -> np.ndarray:
        seen.append(stamps.copy())
        return np.arange(0, len(stamps), 2)

    ts, data = ring.read_range(3000, 9000, pick=every_other)
    assert seen[0].tolist() == [3000, 4000, 5000, 6000, 7000, 8000, 9000]
    assert ts.tolist() == [3000, 5000, 7000, 9000]
    assert data[:, 0].tolist() == [2, 4, 6, 8]


def test_read_latest() -> None:
    ring = filled(5, 8)
    ts, data = ring.read_latest(3)
    assert ts.tolist() == [6000, 7000, 8000] and data[:, 0].tolist() == [5, 6, 7]
    assert ring.read_latest(50)[0].tolist() == [4000, 5000, 6000, 7000, 8000]
    assert Ring(3, (2,)).read_latest(2)[0].shape == (0,)


def test_a_writer_racing_the_copy_forces_a_retry() -> None:
    # The pick hook runs between the timestamp snapshot and the row copy: writing there is the
    # worst interleaving a writer thread could produce. The read must not return those rows.
    ring = filled(4, 4)
    calls = [0]

    def overwrite_once(stamps: np.ndarray) -> np.ndarray:
        calls[0] += 1
        if calls[0] == 1:
            for i in range(4, 8):
                ring.write(1000 * (i + 1), np.full(3, i, np.float32))
        return np.arange(len(stamps))

    ts, data = ring.read_range(0, 10**9, pick=overwrite_once)
    assert calls[0] == 2, "the first attempt was thrown away"
    assert ts.tolist() == [5000, 6000, 7000, 8000]
    assert np.array_equal(data[:, 0], (ts // 1000 - 1).astype(np.float32))


def test_a_reader_that_always_loses_gets_only_intact_rows() -> None:
    ring = filled(4, 4)
    next_i = [4]

    def overwrite_two(stamps: np.ndarray) -> np.ndarray:
        for _ in range(2):
            i = next_i[0]
            ring.write(1000 * (i + 1), np.full(3, i, np.float32))
            next_i[0] += 1
        return np.arange(len(stamps))

    ts, data = ring.read_range(0, 10**9, pick=overwrite_two)
    assert next_i[0] == 4 + 2 * (MAX_READ_TRIES + 1)
    assert len(ts) == 2, "two rows of the last snapshot were overwritten and trimmed"
    assert np.array_equal(data[:, 0], (ts // 1000 - 1).astype(np.float32))


@pytest.mark.slow
def test_concurrent_writer_and_readers_never_see_torn_rows() -> None:
    # Big rows (numpy may release the GIL while copying them) and a tiny ring maximise overlap.
    row = (256, 256)
    ring = Ring(6, row)
    n_writes = 3000
    errors: List[str] = []
    reads = [0]
    done = threading.Event()

    def writer() -> None:
        frame = np.empty(row, np.float32)
        for i in range(n_writes):
            frame.fill(i)
            ring.write(10 * (i + 1), frame)
        done.set()

    def reader(seed: int) -> None:
        rng = np.random.default_rng(seed)
        while not done.is_set():
            newest = ring.newest_ns or 0
            start = int(newest - rng.integers(0, 80))
            ts, data = ring.read_range(start, newest)
            reads[0] += 1
            if len(ts) == 0:
                continue
            idx = ts // 10 - 1
            if np.any(np.diff(idx) != 1):
                errors.append(f"non-contiguous rows {idx.tolist()}")
            if ts[0] < start or ts[-1] > newest:
                errors.append("rows outside the range")
            lo = data.reshape(len(ts), -1).min(axis=1)
            hi = data.reshape(len(ts), -1).max(axis=1)
            if np.any(lo != hi) or np.any(lo != idx):
                errors.append(f"torn row at {idx.tolist()}")

    old_interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        threads = [threading.Thread(target=reader, args=(s,)) for s in range(3)]
        threads.append(threading.Thread(target=writer))
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
    finally:
        sys.setswitchinterval(old_interval)
    assert not errors, errors[:5]
    assert reads[0] > 100
    assert ring.counters["written"] == n_writes


def test_construction_and_sizes() -> None:
    ring = Ring.for_duration(2.5, 30, (60, 80), name="depth")
    assert ring.capacity == 75
    assert ring.nbytes == (75 + 1) * 60 * 80 * 4 + (75 + 1) * 8
    assert ring.dtype == np.float32
    with pytest.raises(ValueError):
        Ring(0, (3,))

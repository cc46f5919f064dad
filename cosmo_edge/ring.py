"""A preallocated ring of timestamped samples for one stream: one writer thread, many readers.

Storage is fixed at construction: ``capacity`` samples of ``sample_shape`` and ``dtype``, plus an
int64 host-ns timestamp per sample (strictly increasing; see ``cosmo_edge.timebase``). Nothing is
allocated on the write path; ``write`` copies one sample into its slot.

Concurrency without a lock on the write path (a sequence lock): the writer fills slot
``n % slots`` and only then publishes ``n + 1`` as the write count. A reader takes the count, copies
what it needs, takes the count again, and keeps only samples whose slots the writer cannot have
touched in between (the ring has one spare slot, so the slot being written is never a readable
one). If a read raced with the writer over the samples it wanted, it retries; after
``MAX_READ_TRIES`` it returns the samples that are still intact (only the oldest can be lost), so
readers never see a torn sample and never block the writer. Readers share one small lock for the
"newest sample read" mark that the drop counter uses; the writer never takes it.

Drops (``counters``): ``late`` - a sample not newer than the newest one (out of order, or a duplicate
timestamp) is refused; ``overwritten_unread`` - a sample overwritten before any reader's range
reached it.
"""

import logging
import threading
from typing import Any, Callable, Dict, Optional, Tuple

import numpy as np

logger = logging.getLogger(__name__)

MAX_READ_TRIES = 4

# Picks rows of a range to copy: gets the range's timestamps, returns indices into them.
Picker = Callable[[np.ndarray], np.ndarray]


class Ring:
    """Fixed-size ring of (timestamp ns, sample) for one stream; see the module docstring."""

    def __init__(
        self,
        capacity: int,
        sample_shape: Tuple[int, ...],
        dtype: Any = np.float32,
        name: str = "",
    ) -> None:
        if capacity < 1:
            raise ValueError(f"ring capacity must be >= 1 sample, got {capacity}")
        self.name = name
        self.capacity = int(capacity)
        self.sample_shape = tuple(int(n) for n in sample_shape)
        self._slots = self.capacity + 1  # one spare: the slot being written is never readable
        self._data = np.zeros((self._slots,) + self.sample_shape, dtype=dtype)
        self._ts = np.zeros(self._slots, dtype=np.int64)
        self._count = 0  # samples ever written; published after the slot is filled
        self._newest_ns: Optional[int] = None
        self._read_upto = 0  # absolute index one past the newest sample any reader has read
        self._read_lock = threading.Lock()
        self.counters: Dict[str, int] = {"written": 0, "late": 0, "overwritten_unread": 0}

    @classmethod
    def for_duration(
        cls,
        duration_s: float,
        rate_hz: float,
        sample_shape: Tuple[int, ...],
        dtype: Any = np.float32,
        name: str = "",
    ) -> "Ring":
        """A ring holding ``duration_s`` seconds at ``rate_hz`` (rounded up, at least one sample)."""
        return cls(max(1, int(np.ceil(duration_s * rate_hz))), sample_shape, dtype, name)

    # ------------------------------------------------------------------ properties

    @property
    def dtype(self) -> np.dtype:
        """Element type of the stored samples."""
        return self._data.dtype

    @property
    def nbytes(self) -> int:
        """Memory held by the ring (samples and timestamps), in bytes."""
        return int(self._data.nbytes + self._ts.nbytes)

    @property
    def count(self) -> int:
        """Samples written since construction (not capped at the capacity)."""
        return self._count

    @property
    def newest_ns(self) -> Optional[int]:
        """Timestamp of the newest sample, or None before the first write."""
        return self._newest_ns

    @property
    def drops(self) -> int:
        """All samples lost: refused as late plus overwritten before being read."""
        return self.counters["late"] + self.counters["overwritten_unread"]

    # ------------------------------------------------------------------ writer

    def write(self, t_ns: int, sample: np.ndarray) -> bool:
        """Store one sample stamped ``t_ns``; False (and counted) when not newer than the newest."""
        t_ns = int(t_ns)
        if self._newest_ns is not None and t_ns <= self._newest_ns:
            self.counters["late"] += 1
            return False
        n = self._count
        evicted = n - self.capacity  # absolute index that leaves the readable range now
        if evicted >= 0 and evicted >= self._read_upto:
            self.counters["overwritten_unread"] += 1
        slot = n % self._slots
        self._data[slot] = sample
        self._ts[slot] = t_ns
        self._count = n + 1  # publish: readers may now see slot `slot`
        self._newest_ns = t_ns
        self.counters["written"] += 1
        return True

    # ------------------------------------------------------------------ readers

    def read_range(
        self, t_start_ns: int, t_end_ns: int, pick: Optional[Picker] = None
    ) -> Tuple[np.ndarray, np.ndarray]:
        """Copy the samples with ``t_start_ns <= t <= t_end_ns``: (timestamps (n,), data (n, ...)).

        ``pick``, if given, receives the range's timestamps and returns the indices of the rows to
        copy (e.g. 40 of 60 depth frames), so rows that would be thrown away are never copied.
        The result is a consistent snapshot: every returned row is one whole written sample.
        """
        for _ in range(MAX_READ_TRIES):
            got = self._try_read(t_start_ns, t_end_ns, pick, trim=False)
            if got is not None:
                return got
        logger.warning("ring %s: reader kept losing the race with the writer; trimming", self.name)
        got = self._try_read(t_start_ns, t_end_ns, pick, trim=True)
        assert got is not None
        return got

    def read_latest(self, n: int) -> Tuple[np.ndarray, np.ndarray]:
        """Copy the newest ``n`` samples (fewer if the ring holds fewer)."""
        newest = self._newest_ns
        if newest is None or n <= 0:
            return self._empty()

        def last_n(ts: np.ndarray) -> np.ndarray:
            return np.arange(max(0, len(ts) - n), len(ts))

        return self.read_range(np.iinfo(np.int64).min, newest, pick=last_n)

    def _empty(self) -> Tuple[np.ndarray, np.ndarray]:
        return np.zeros(0, np.int64), np.zeros((0,) + self.sample_shape, self._data.dtype)

    def _try_read(
        self, t_start_ns: int, t_end_ns: int, pick: Optional[Picker], trim: bool
    ) -> Optional[Tuple[np.ndarray, np.ndarray]]:
        """One attempt of the sequence-lock read; None when the writer overwrote wanted rows."""
        count1 = self._count
        first = max(0, count1 - self.capacity)  # oldest readable absolute index
        if count1 == first:
            return self._empty()
        ts = self._gather_ts(first, count1)
        count2 = self._count
        # Rows older than this were overwritten while their stamps were copied: they are gone, so
        # the search starts after them (a retry could not bring them back).
        intact_from = max(first, count2 - self.capacity)
        skip = intact_from - first
        lo = skip + int(np.searchsorted(ts[skip:], t_start_ns, side="left"))
        hi = skip + int(np.searchsorted(ts[skip:], t_end_ns, side="right"))
        rows = np.arange(lo, hi)
        if pick is not None and len(rows):
            rows = rows[np.asarray(pick(ts[lo:hi]), dtype=np.int64)]
        absolute = first + rows
        data = self._data[absolute % self._slots]  # fancy indexing: a copy
        count3 = self._count
        torn = absolute < count3 - self.capacity  # overwritten while being copied
        if torn.any():
            if not trim:
                return None
            keep = ~torn
            rows, absolute, data = rows[keep], absolute[keep], data[keep]
        self._mark_read(first + hi)
        return ts[rows], data

    def _gather_ts(self, first: int, end: int) -> np.ndarray:
        """Timestamps of absolute indices [first, end) in order (a copy)."""
        start_slot, end_slot = first % self._slots, end % self._slots
        if start_slot < end_slot or end - first == 0:
            return self._ts[start_slot:end_slot].copy()
        return np.concatenate((self._ts[start_slot:], self._ts[:end_slot]))

    def _mark_read(self, upto: int) -> None:
        with self._read_lock:
            if upto > self._read_upto:
                self._read_upto = upto

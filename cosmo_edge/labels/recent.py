"""Bounded buffer of the windows the model just saw, so a label can find them by time or id.

The daemon adds every window it runs inference on; the label server asks for the windows of a span
(:meth:`RecentWindows.for_span`) or by id (:meth:`RecentWindows.by_id`). A window belongs to a span
when at least ``min_overlap`` of its own length lies inside the span, so with 2 s windows a
``--last 5s`` label takes the windows mostly inside those 5 s, and a 1 s span still finds the
windows centred on it. Memory is ``capacity`` times one window (:meth:`nbytes_per_window`; depth
makes a window about 0.8 MB), so size ``capacity`` from the config, e.g. with :func:`capacity_for`.
"""

import collections
import logging
import math
import threading
from typing import Any, Deque, Dict, Iterable, List

logger = logging.getLogger(__name__)


def capacity_for(buffer_s: float, hop_s: float) -> int:
    """Windows needed to keep ``buffer_s`` seconds of history at one window per ``hop_s``."""
    if buffer_s <= 0 or hop_s <= 0:
        raise ValueError(f"buffer_s and hop_s must be > 0, got {buffer_s}, {hop_s}")
    return int(math.ceil(buffer_s / hop_s)) + 1


class RecentWindows:
    """Thread-safe ring of ``cosmo_edge.windows.Window`` records (oldest dropped first)."""

    def __init__(self, capacity: int, min_overlap: float = 0.5) -> None:
        if capacity < 1 or not 0.0 < min_overlap <= 1.0:
            raise ValueError(f"need capacity >= 1 and 0 < min_overlap <= 1, got {capacity}, {min_overlap}")
        self.min_overlap = min_overlap
        self._windows: Deque[Any] = collections.deque(maxlen=capacity)
        self._lock = threading.Lock()

    def add(self, window: Any) -> None:
        """Keep ``window`` (do not modify its arrays afterwards)."""
        with self._lock:
            self._windows.append(window)

    def __len__(self) -> int:
        with self._lock:
            return len(self._windows)

    def for_span(self, t_start_ns: int, t_end_ns: int) -> List[Any]:
        """Windows with at least ``min_overlap`` of their length inside ``[t_start_ns, t_end_ns]``."""
        with self._lock:
            windows = list(self._windows)
        out = []
        for window in windows:
            length = max(1, window.t_end_ns - window.t_start_ns)
            inside = min(window.t_end_ns, t_end_ns) - max(window.t_start_ns, t_start_ns)
            if inside >= self.min_overlap * length:
                out.append(window)
        return out

    def by_id(self, window_ids: Iterable[int]) -> List[Any]:
        """The buffered windows among ``window_ids``, in the order asked (unknown ids are left out)."""
        with self._lock:
            index: Dict[int, Any] = {w.window_id: w for w in self._windows}
        return [index[i] for i in window_ids if i in index]

    def nbytes_per_window(self) -> int:
        """Bytes of input arrays in the newest window (0 when empty)."""
        with self._lock:
            newest = self._windows[-1] if self._windows else None
        return 0 if newest is None else sum(int(a.nbytes) for a in newest.inputs.values())

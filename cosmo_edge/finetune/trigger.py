"""When to start a fine-tuning round: N new labeled windows, or every T minutes if at least one is new.

``RoundTrigger.due(new_labels, now_s)`` is a pure decision on the count of labeled windows stored
since the last round (``LabelStore.new_since``) and a monotonic clock, so it is tested without
threads or sleeps. The period counts from the last round (or from the trigger's creation).
"""

import logging
from typing import Optional

logger = logging.getLogger(__name__)


class RoundTrigger:
    """Decide whether a round is due.

    Args:
        min_new_labels: this many new labeled windows start a round at once (windows, >= 1).
        period_s: after this long since the last round, one new window is enough (s).
        now_s: the clock reading the period counts from (monotonic seconds).
    """

    def __init__(self, min_new_labels: int, period_s: float, now_s: float) -> None:
        if min_new_labels < 1 or period_s <= 0:
            raise ValueError(f"need min_new_labels >= 1 and period_s > 0, got {min_new_labels}, {period_s}")
        self.min_new_labels = int(min_new_labels)
        self.period_s = float(period_s)
        self.last_round_s = float(now_s)

    def reason(self, new_labels: int, now_s: float) -> Optional[str]:
        """``"count"``, ``"period"`` or None (not due)."""
        if new_labels >= self.min_new_labels:
            return "count"
        if new_labels >= 1 and now_s - self.last_round_s >= self.period_s:
            return "period"
        return None

    def due(self, new_labels: int, now_s: float) -> bool:
        """True when a round should start now."""
        return self.reason(new_labels, now_s) is not None

    def started(self, now_s: float) -> None:
        """A round started at ``now_s``: the period counts from here."""
        self.last_round_s = float(now_s)

"""Activity-change detection with hysteresis, so one odd window does not flip the reported activity.

Per window the classifier gives a label and its confidence. The reported activity switches to a new
label only after that label won ``confirm_windows`` windows in a row, each with confidence at least
``min_confidence``; a single window at ``instant_confidence`` or more switches at once (a clear
change should not wait). The first confident label after start is reported as a change from ``None``.
"""

import logging
from dataclasses import dataclass
from typing import Optional

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ActivityChange:
    """The reported activity switched from ``previous`` to ``label``."""

    previous: Optional[str]
    label: str
    confidence: float  # of the window that confirmed the change


class ActivityTracker:
    """Hysteresis over per-window labels; see the module docstring.

    Args:
        confirm_windows: consecutive confident windows a new label needs (windows).
        min_confidence: confidence a window needs to count towards a change (probability).
        instant_confidence: confidence at which one window is enough (probability; > 1 disables).
    """

    def __init__(
        self, confirm_windows: int = 2, min_confidence: float = 0.5, instant_confidence: float = 0.95
    ) -> None:
        if confirm_windows < 1:
            raise ValueError(f"confirm_windows must be >= 1, got {confirm_windows}")
        self.confirm_windows = int(confirm_windows)
        self.min_confidence = float(min_confidence)
        self.instant_confidence = float(instant_confidence)
        self.current: Optional[str] = None
        self.current_confidence = 0.0
        self.changes = 0
        self._candidate: Optional[str] = None
        self._streak = 0

    def update(self, label: str, confidence: float) -> Optional[ActivityChange]:
        """Feed one window's winning ``label``; return the change it confirmed, if any."""
        if label == self.current:
            self._candidate, self._streak = None, 0
            self.current_confidence = float(confidence)
            return None
        if confidence < self.min_confidence:
            self._candidate, self._streak = None, 0
            return None
        if label == self._candidate:
            self._streak += 1
        else:
            self._candidate, self._streak = label, 1
        if self._streak < self.confirm_windows and confidence < self.instant_confidence:
            return None
        change = ActivityChange(self.current, label, float(confidence))
        self.current, self.current_confidence = label, float(confidence)
        self._candidate, self._streak = None, 0
        self.changes += 1
        logger.info("activity: %s -> %s (%.2f)", change.previous, label, confidence)
        return change

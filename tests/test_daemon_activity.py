"""Activity-change hysteresis: one odd window never flips the reported activity."""

import pytest

from cosmo_edge.daemon.activity import ActivityTracker


def test_first_confident_label_needs_confirmation_then_is_a_change_from_none():
    tracker = ActivityTracker(confirm_windows=2, min_confidence=0.5, instant_confidence=0.99)
    assert tracker.update("walk", 0.8) is None
    change = tracker.update("walk", 0.7)
    assert change is not None and change.previous is None and change.label == "walk"
    assert tracker.current == "walk"


def test_single_outlier_window_does_not_flip():
    tracker = ActivityTracker(confirm_windows=2, instant_confidence=0.99)
    for _ in range(2):
        tracker.update("walk", 0.9)
    assert tracker.update("wave", 0.8) is None  # one window only
    assert tracker.update("walk", 0.9) is None
    assert tracker.update("wave", 0.8) is None  # the streak was broken
    assert tracker.current == "walk"
    change = tracker.update("wave", 0.8)
    assert change is not None and (change.previous, change.label) == ("walk", "wave")
    assert tracker.changes == 2


def test_low_confidence_windows_never_count():
    tracker = ActivityTracker(confirm_windows=2, min_confidence=0.6, instant_confidence=0.99)
    for _ in range(5):
        assert tracker.update("clap", 0.4) is None
    assert tracker.current is None


def test_a_very_confident_window_switches_at_once():
    tracker = ActivityTracker(confirm_windows=3, instant_confidence=0.95)
    change = tracker.update("sit", 0.97)
    assert change is not None and change.label == "sit"


def test_bad_confirm_windows():
    with pytest.raises(ValueError, match="confirm_windows"):
        ActivityTracker(confirm_windows=0)

"""Round trigger (N labels or T minutes) and the promotion rule with its held-out split."""

import numpy as np
import pytest

from cosmo_edge.finetune.promotion import decide, holdout_split
from cosmo_edge.finetune.trigger import RoundTrigger


def test_trigger_count_and_period():
    trigger = RoundTrigger(min_new_labels=5, period_s=60.0, now_s=0.0)
    assert trigger.reason(4, 10.0) is None
    assert trigger.reason(5, 10.0) == "count"
    assert trigger.reason(0, 1000.0) is None  # the period needs at least one new label
    assert trigger.reason(1, 59.0) is None
    assert trigger.reason(1, 60.0) == "period"
    trigger.started(60.0)
    assert not trigger.due(1, 100.0) and trigger.due(1, 120.0)
    with pytest.raises(ValueError):
        RoundTrigger(0, 1.0, 0.0)


def test_rule_accuracy_may_not_drop_f1_within_margin():
    active = {"accuracy": 0.80, "macro_f1": 0.80}
    assert decide({"accuracy": 0.85, "macro_f1": 0.85}, active).promote
    assert decide({"accuracy": 0.80, "macro_f1": 0.79}, active, f1_margin=0.02).promote
    assert not decide({"accuracy": 0.80, "macro_f1": 0.77}, active, f1_margin=0.02).promote
    assert not decide({"accuracy": 0.79, "macro_f1": 0.95}, active).promote
    assert not decide({"accuracy": 1.0, "macro_f1": 1.0}, active, n_holdout=0).promote


def test_holdout_split_is_stratified_fixed_and_keeps_events_together():
    labels = np.repeat([0, 1, 2], 8)
    events = [f"{label}-{k // 4}-{k % 2}" for label in range(3) for k in range(8)]  # 4 events per class
    train, held = holdout_split(labels, events, 0.25, seed=7)
    again = holdout_split(labels, events, 0.25, seed=7)
    assert np.array_equal(train, again[0]) and np.array_equal(held, again[1])
    assert sorted(np.concatenate([train, held]).tolist()) == list(range(24))
    for label in range(3):
        assert np.sum(labels[held] == label) >= 1 and np.sum(labels[train] == label) >= 1
    held_events = {events[i] for i in held}
    assert not held_events & {events[i] for i in train}


def test_holdout_split_single_event_and_singleton_class():
    labels = np.array([0, 0, 0, 0, 1])
    train, held = holdout_split(labels, ["a"] * 4 + ["b"], 0.25, seed=0)
    assert len(held) == 1 and labels[held[0]] == 0  # one window of the 4-window event
    assert 4 in train  # a class with one window only trains


def test_config_sections_for_labels_and_finetune():
    import yaml

    from cosmo_edge.bundled import SIM_CONFIG
    from cosmo_edge.config import ConfigError, parse_config

    data = yaml.safe_load(SIM_CONFIG.read_text(encoding="utf-8"))
    data["labels"] = {"enabled": True, "buffer_s": 30}
    data["finetune"] = {"enabled": True, "min_new_labels": 5, "period_min": 2.5, "isolation": "thread"}
    config = parse_config(yaml.safe_dump(data))
    assert config.finetune.period_min == 2.5 and config.finetune.isolation == "thread"
    assert config.finetune.f1_margin == 0.02 and config.labels.buffer_s == 30
    data["finetune"]["isolation"] = "fiber"
    with pytest.raises(ConfigError, match="isolation"):
        parse_config(yaml.safe_dump(data))

"""One fine-tuning round and the background service (thread and worker process) on a small model."""

import threading

import pytest
import torch
from finetune_support import fill_store, save_model

from cosmo_edge.finetune.registry import ModelRegistry, ensure_base
from cosmo_edge.finetune.round import RoundSettings, RoundSkipped, run_round
from cosmo_edge.finetune.service import FinetuneService
from cosmo_edge.finetune.trigger import RoundTrigger
from cosmo_edge.labels import LabelStore
from cosmo_edge.training.checkpoint import load_classifier

SETTINGS = RoundSettings(epochs=20, t_iter_epochs=5)


def test_round_trains_a_copy_and_beats_an_untrained_model(tmp_path):
    active = save_model(tmp_path / "active.pt")
    before = active.read_bytes()
    with LabelStore.in_state_dir(tmp_path) as store:
        fill_store(store, per_class=10)
    result = run_round(active, tmp_path / "labels.sqlite3", tmp_path / "cand.pt", SETTINGS)
    print("held-out accuracy active", result["holdout"]["active"]["accuracy"],
          "candidate", result["holdout"]["candidate"]["accuracy"])  # fmt: skip
    assert active.read_bytes() == before  # the active checkpoint is never touched
    assert result["holdout"]["candidate"]["accuracy"] > result["holdout"]["active"]["accuracy"]
    assert result["promote"] and result["last_row_id"] == 30
    assert result["train_windows"] + result["holdout"]["windows"] == 30
    model, meta = load_classifier(tmp_path / "cand.pt")  # weights_only load of the fresh checkpoint
    assert meta["label_names"] == ["c0", "c1", "c2"] and meta["metrics"]["finetune"]["promote"]
    reference, _ = load_classifier(active)
    assert not torch.equal(model.head[0].weight, reference.head[0].weight)
    assert torch.equal(model.fusion.qom_weights, reference.fusion.qom_weights)  # QoM prior kept


def test_round_with_too_few_labels_is_skipped(tmp_path):
    active = save_model(tmp_path / "active.pt")
    with LabelStore.in_state_dir(tmp_path) as store:
        fill_store(store, per_class=1, events_per_class=1)
    with pytest.raises(RoundSkipped):
        run_round(active, tmp_path / "labels.sqlite3", tmp_path / "cand.pt", SETTINGS)


@pytest.mark.parametrize("isolation", ["thread", pytest.param("process", marks=pytest.mark.slow)])
def test_service_promotes_swaps_and_follows_rollback(tmp_path, isolation):
    registry = ModelRegistry.in_state_dir(tmp_path)
    ensure_base(registry, save_model(tmp_path / "configured.pt"))
    swapped = []
    store = LabelStore.in_state_dir(tmp_path)
    service = FinetuneService(
        store,
        registry,
        SETTINGS,
        load=lambda path: ("predictor", path.parent.name),
        swap=lambda predictor, version: swapped.append(version),
        trigger=RoundTrigger(min_new_labels=30, period_s=3600.0, now_s=0.0),
        isolation=isolation,
    )
    fill_store(store, per_class=10)
    result = service.run_round_now()
    assert result["promote"], result
    assert registry.active() == "v0002" and swapped == ["v0002"]
    assert registry.state()["last_row_id"] == 30
    assert registry.metrics("v0002")["parent"] == "v0001"
    assert [e["event"] for e in registry.history()] == ["registered", "promoted"]
    assert not list(registry.root.glob(".tmp-*"))  # the work folder is gone
    registry.rollback()
    service.follow_pointer()
    assert swapped == ["v0002", "v0001"] and service.served_version == "v0001"
    store.close()


def test_service_thread_runs_a_round_when_labels_arrive(tmp_path):
    registry = ModelRegistry.in_state_dir(tmp_path)
    ensure_base(registry, save_model(tmp_path / "configured.pt"))
    done = threading.Event()
    store = LabelStore.in_state_dir(tmp_path)
    service = FinetuneService(
        store,
        registry,
        SETTINGS,
        load=lambda path: path,
        swap=lambda predictor, version: done.set(),
        trigger=RoundTrigger(min_new_labels=30, period_s=3600.0, now_s=0.0),
        isolation="thread",
        poll_s=0.05,
    )
    service.start()
    try:
        fill_store(store, per_class=10)
        assert done.wait(60.0), service.counters
    finally:
        service.stop()
        service.join(10.0)
        store.close()
    assert service.counters["promoted"] == 1 and service.counters["failed"] == 0


def test_service_finishes_a_promotion_cut_short_by_a_crash(tmp_path):
    registry = ModelRegistry.in_state_dir(tmp_path)
    base = ensure_base(registry, save_model(tmp_path / "configured.pt"))
    judged = {"source": "finetune", "parent": "v0001", "promote": True, "reason": "better", "last_row_id": 7}
    registry.add_version(base, judged)  # the crash came before the pointer moved
    registry.add_version(base, dict(judged, promote=False))  # never resumed: judged worse
    swapped = []
    service = FinetuneService(
        None, registry, SETTINGS, lambda p: p, lambda p, v: swapped.append(v), RoundTrigger(1, 1.0, 0.0)
    )
    service.resume_interrupted()
    assert swapped == [] and registry.active() == "v0001"  # the newest one was not promotable
    (registry.root / "v0003" / "model.pt").unlink()  # as if v0003 had never been written
    service.resume_interrupted()
    assert swapped == ["v0002"] and registry.active() == "v0002"
    assert registry.history()[-1]["resumed"] is True
    assert registry.state()["last_row_id"] == 7  # its labels count as consumed: no second round on them

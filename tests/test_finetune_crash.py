"""``kill -9`` of a real daemon mid label stream, mid round and mid swap loses no acknowledged label
and leaves a loadable active model; the restarted daemon serves it and finishes the learning.

One daemon after another on the same state directory:

1. labels flow in a loop (one request per window) and the daemon is killed while they flow: every
   acknowledged message id must be in the store afterwards, and the store must pass its integrity check;
2. enough labels for a round are sent and the daemon is killed as soon as the round's work folder
   exists (the worker is training): the worker must die with it, the active model stays v0001;
3. the restarted daemon trains on the same labels (not yet consumed) and is killed as soon as the
   candidate's version folder appears (the backend artifact is being rebuilt, the swap not done);
4. the last start must come up on a loadable active model, finish the interrupted promotion (the
   candidate was judged and registered before the kill) and publish windows with it.
"""

import sqlite3
import time

import pytest
from finetune_daemon_support import DaemonProcess, LabelFlood, confused_model, label_windows, write_config

from cosmo_edge.finetune.registry import ModelRegistry
from cosmo_edge.labels import store_path
from cosmo_edge.runtime.artifacts import load_artifact

pytest.importorskip("zmq")
pytest.importorskip("pyrealsense2")

SCRIPT = ",".join(f"{a}:6" for a in ("stand_still", "walk", "wave", "clap", "squat", "sit") * 8)
FINETUNE = {"min_new_labels": 40, "epochs": 10, "t_iter_epochs": 5, "isolation": "process"}


def _stored_ids(state):
    with sqlite3.connect(str(store_path(state))) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        return {row[0] for row in conn.execute("SELECT message_id FROM label_events")}


def _wait_for(daemon, condition, timeout_s):
    end = time.monotonic() + timeout_s
    while time.monotonic() < end and daemon.proc.poll() is None:
        if condition():
            return True
        daemon.pump(0.05)
    return False


def _assert_loadable_active(registry):
    active = registry.active_path()
    assert active is not None
    artifact = load_artifact(active)  # weights_only load of whatever the pointer names
    assert artifact.label_names


@pytest.mark.slow
def test_kill9_mid_labels_mid_round_mid_swap(tmp_path):
    config = write_config(tmp_path, SCRIPT, 3.0, FINETUNE, confused_model(tmp_path / "confused.pt"))
    state = tmp_path / "state"
    registry = ModelRegistry.in_state_dir(state)

    # 1. kill while labels flow (fewer than a round needs)
    daemon = DaemonProcess(tmp_path, config, "run1")
    flood = LabelFlood(daemon)
    try:
        daemon.pump(6.0)
        flood.start()
        assert _wait_for(daemon, lambda: len(flood.acked) >= 8, 30.0), daemon.log()[-3000:]
        daemon.kill9()
    finally:
        flood.stop_event.set()
        daemon.close()
    flood.join(10.0)
    missing = set(flood.acked) - _stored_ids(state)
    assert not missing, f"acknowledged labels lost: {missing}"
    _assert_loadable_active(registry)

    # 2. kill mid round
    daemon = DaemonProcess(tmp_path, config, "run2")
    try:
        acked, seen, in_round = [], 0, False
        for _ in range(20):  # label what was seen every 3 s until the round starts
            daemon.pump(3.0)
            acked += label_windows(daemon.label_endpoint, daemon.settled(seen))
            seen = len(daemon.windows)
            in_round = _wait_for(daemon, lambda: bool(list(registry.root.glob(".tmp-round-*"))), 2.0)
            if in_round:
                break
        assert acked and in_round, daemon.log()[-3000:]
        time.sleep(1.0)  # the worker is importing or training now
        daemon.kill9()
    finally:
        daemon.close()
    assert set(acked) <= _stored_ids(state)
    assert registry.active() == "v0001"
    _assert_loadable_active(registry)
    time.sleep(1.0)
    assert list(registry.root.glob(".tmp-round-*/candidate.pt")) == []  # the worker died with the daemon

    # 3. restart: the same labels trigger a round again; kill mid swap
    daemon = DaemonProcess(tmp_path, config, "run3")
    try:
        appeared = _wait_for(daemon, lambda: "v0002" in registry.versions(), 120.0)
        assert appeared, daemon.log()[-4000:]
        daemon.kill9()
    finally:
        daemon.close()
    assert registry.active() in ("v0001", "v0002")
    _assert_loadable_active(registry)

    # 4. the last start serves a loadable active model
    daemon = DaemonProcess(tmp_path, config, "run4")
    try:
        daemon.pump(15.0)
        assert daemon.windows, daemon.log()[-3000:]
        assert daemon.terminate() == 0
    finally:
        daemon.close()
    served = {m["model_version"] for m in daemon.windows}
    print(f"\nafter three kills: active {registry.active()}, served {served}, history "
          f"{[e['event'] for e in registry.history()]}")  # fmt: skip
    assert load_artifact(registry.active_path()).version in served
    assert registry.active() == "v0002"  # the interrupted promotion was finished (or had completed)
    assert [e["event"] for e in registry.history()].count("promoted") == 1
    assert not list(registry.root.glob(".tmp-*"))  # leftovers of the crashes were cleaned

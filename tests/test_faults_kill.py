"""``kill -9`` of a real daemon at seeded random moments while labels flow and fine-tuning rounds run.

Complements ``test_finetune_crash.py`` (three chosen moments): here the moment is drawn from a seeded
generator, several times on the same state directory. A label client labels every new window as fast
as windows come; rounds start after ``min_new_labels`` labels, so later kills can land inside a
round's worker or a promotion. After each kill: every acknowledged label is in the store, which
passes ``PRAGMA integrity_check``, and the registry's active model loads. After the last kill the
daemon starts again and serves that active model.
"""

import random
import threading
import time
import uuid

import pytest
from fault_support import DaemonRun, stored_message_ids, wait_for, write_config
from finetune_daemon_support import send_and_record

from cosmo_edge.finetune.registry import ModelRegistry
from cosmo_edge.labels import LabelRequest
from cosmo_edge.runtime.artifacts import load_artifact

pytest.importorskip("zmq")
pytest.importorskip("pyrealsense2")

SEED = 20221017
KILLS = 3
FINETUNE = {"min_new_labels": 24, "epochs": 4, "t_iter_epochs": 2, "isolation": "process"}


class Labeler(threading.Thread):
    """Labels each new window once (class chosen by window id); records acknowledged ids."""

    def __init__(self, daemon: DaemonRun) -> None:
        super().__init__(daemon=True)
        self.target = daemon
        self.acked = []
        self.stop_event = threading.Event()

    def run(self) -> None:
        labels, seen = None, set()
        while not self.stop_event.is_set():
            statuses = self.target.statuses()
            labels = labels or (statuses[-1]["labels"] if statuses else None)
            for window in self.target.windows()[-4:]:
                wid = int(window["window_id"])
                if labels is None or wid in seen:
                    continue
                seen.add(wid)
                request = LabelRequest(uuid.uuid4().hex, labels[wid % len(labels)], window_ids=(wid,))
                if not send_and_record(self.target.label_endpoint, request, self.acked):
                    return  # the daemon is gone
            time.sleep(0.05)


@pytest.mark.slow
def test_kill9_at_random_moments_loses_no_acked_label_and_keeps_a_loadable_model(tmp_path):
    """Expected: see the module docstring; the kill moments are printed with the seed."""
    rng = random.Random(SEED)
    config = write_config(tmp_path, labels=True, finetune=FINETUNE)
    state = tmp_path / "state"
    registry = ModelRegistry.in_state_dir(state)
    acked_all = []
    moments = []
    for kill in range(KILLS):
        daemon = DaemonRun(config, tmp_path / f"daemon{kill}.log")
        labeler = Labeler(daemon)
        try:
            assert daemon.wait_windows(2, 90.0), daemon.log()[-3000:]
            labeler.start()
            delay_s = rng.uniform(1.0, 15.0)
            moments.append(round(delay_s, 2))
            time.sleep(delay_s)
            in_round = bool(list(registry.root.glob(".tmp-round-*")))
            daemon.kill9()
            moments[-1] = (moments[-1], "in a round" if in_round else "between rounds")
        finally:
            labeler.stop_event.set()
            daemon.close()
        labeler.join(10.0)
        acked_all += labeler.acked
        stored = stored_message_ids(state)  # also runs PRAGMA integrity_check
        missing = set(acked_all) - stored
        assert not missing, f"kill {kill} after {delay_s:.2f} s: acknowledged labels lost: {missing}"
        active = registry.active_path()
        assert active is not None and load_artifact(active).label_names
    print(f"\nseed {SEED}: kills after {moments} s of labels; {len(acked_all)} labels acked; "
          f"history {[e['event'] for e in registry.history()]}")  # fmt: skip
    assert len(acked_all) >= 10

    daemon = DaemonRun(config, tmp_path / "daemon-last.log")
    try:
        assert daemon.wait_windows(4, 90.0), daemon.log()[-3000:]
        active_version = load_artifact(registry.active_path()).version
        assert wait_for(lambda: daemon.windows()[-1]["model_version"] == active_version, 30.0)
        assert daemon.terminate() == 0, daemon.log()[-3000:]
    finally:
        daemon.close()
    assert set(acked_all) <= stored_message_ids(state)
    assert not list(registry.root.glob(".tmp-*"))  # the restarted service cleaned what the kills left

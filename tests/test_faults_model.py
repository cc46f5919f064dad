"""A corrupted or truncated model file at start-up, against a real ``cosmo-edge run`` process.

Without fine-tuning the daemon serves the configured checkpoint and has nothing to fall back to: a
file that does not load must stop the start with a clear error (exit 1) before anything is
published. With fine-tuning the registry holds earlier versions and the sha256 each was registered
with: a damaged active version (truncated, or with flipped bytes that still unpickle into a model
with wrong weights) must be refused and the previous version served.
"""

import os
import shutil
import time

import pytest
from fault_support import DaemonRun, write_config
from finetune_daemon_support import confused_model

from cosmo_edge.bundled import SIM_MODEL
from cosmo_edge.finetune.registry import ModelRegistry, RegistryError, ensure_base
from cosmo_edge.runtime.artifacts import load_artifact, sha256_file

pytest.importorskip("zmq")
pytest.importorskip("pyrealsense2")


def _truncate(path):
    size = os.path.getsize(path)
    with open(path, "r+b") as handle:
        handle.truncate(size // 3)


def _flip(path):
    """Invert 64 bytes in the middle of the file (inside the weights: it still loads)."""
    size = os.path.getsize(path)
    with open(path, "r+b") as handle:
        handle.seek(size // 2)
        data = handle.read(64)
        handle.seek(size // 2)
        handle.write(bytes(b ^ 0xFF for b in data))


def test_truncated_model_without_registry_stops_the_start_with_a_clear_error(tmp_path):
    """Expected: ``cosmo-edge run`` on a truncated checkpoint exits 1 within a minute, says
    ``start-up failed`` and names the file, and publishes nothing."""
    model = tmp_path / "model.pt"
    shutil.copyfile(str(SIM_MODEL), str(model))
    _truncate(model)
    config = write_config(tmp_path, model=model)
    daemon = DaemonRun(config, tmp_path / "daemon.log")
    try:
        status = daemon.proc.wait(timeout=90)
        time.sleep(0.5)
        assert status == 1, daemon.log()[-3000:]
        assert "start-up failed" in daemon.log() and str(model) in daemon.log()
        assert daemon.windows() == [] and daemon.statuses() == []
    finally:
        daemon.close()


def test_registry_verify_detects_flipped_bytes(tmp_path):
    """Expected: a version whose file changed after registration fails ``verify``; an intact one passes."""
    registry = ModelRegistry(tmp_path / "models")
    version = registry.add_version(SIM_MODEL, {"source": "configured"})
    assert registry.verify(version) == registry.model_path(version)
    load_artifact(registry.model_path(version))
    _flip(registry.model_path(version))
    load_artifact(registry.model_path(version))  # the damage is invisible to the loader ...
    with pytest.raises(RegistryError, match="damaged"):
        registry.verify(version)  # ... but not to the recorded hash


@pytest.mark.parametrize("damage", [_truncate, _flip], ids=["truncated", "flipped-bytes"])
def test_damaged_active_version_falls_back_to_the_previous_one(tmp_path, damage):
    """Expected: with fine-tuning on and a damaged active version v0002, the daemon logs that v0002
    is refused and serves v0001 (every published window carries v0001's model version); the
    damaged model is never served."""
    configured = tmp_path / "configured.pt"
    shutil.copyfile(str(SIM_MODEL), str(configured))
    registry = ModelRegistry.in_state_dir(tmp_path / "state")
    ensure_base(registry, configured)
    tuned = registry.add_version(
        confused_model(tmp_path / "tuned.pt"), {"source": "finetune", "parent": "v0001"}
    )
    registry.set_active(tuned, "promoted")
    good_version = load_artifact(registry.model_path("v0001")).version
    damaged_path = registry.model_path(tuned)
    damage(damaged_path)
    damaged_sha = sha256_file(damaged_path)

    config = write_config(tmp_path, model=configured, finetune={"min_new_labels": 10000})
    daemon = DaemonRun(config, tmp_path / "daemon.log")
    try:
        assert daemon.wait_windows(4, 90.0), daemon.log()[-3000:]
        served = {w["model_version"] for w in daemon.windows()}
        assert served == {good_version}, (served, daemon.log()[-3000:])
        assert damaged_sha[:12] not in served
        assert f"model {damaged_path} does not load" in daemon.log()
        assert daemon.terminate() == 0, daemon.log()[-3000:]
    finally:
        daemon.close()

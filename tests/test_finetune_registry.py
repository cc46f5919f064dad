"""Model registry: versions, atomic active pointer, rollback, history, leftovers of a crash."""

import json
import os

import pytest

from cosmo_edge.finetune.registry import ModelRegistry, RegistryError, ensure_base, write_json_atomic


def _checkpoint(tmp_path, name, content=b"weights"):
    path = tmp_path / name
    path.write_bytes(content)
    return path


def test_versions_pointer_and_rollback(tmp_path):
    registry = ModelRegistry(tmp_path / "models")
    assert registry.active() is None and registry.versions() == []
    v1 = registry.add_version(_checkpoint(tmp_path, "a.pt", b"a"), {"source": "configured"})
    registry.set_active(v1, "registered")
    v2 = registry.add_version(_checkpoint(tmp_path, "b.pt", b"b"), {"source": "finetune", "accuracy": 0.9})
    assert (v1, v2) == ("v0001", "v0002")
    assert registry.active() == v1  # adding a version does not activate it
    registry.set_active(v2, "promoted")
    assert registry.active() == v2 and registry.model_path(v2).read_bytes() == b"b"
    assert registry.metrics(v2)["accuracy"] == 0.9
    assert registry.pointer()["previous"] == v1
    assert registry.rollback() == v1
    assert registry.active() == v1
    assert [e["event"] for e in registry.history()] == ["registered", "promoted", "rollback"]
    with pytest.raises(RegistryError):
        registry.model_path("v0009")


def test_rollback_with_nothing_older_is_refused(tmp_path):
    registry = ModelRegistry(tmp_path)
    registry.set_active(registry.add_version(_checkpoint(tmp_path, "a.pt"), {}), "registered")
    with pytest.raises(RegistryError, match="nothing to roll back"):
        registry.rollback()


def test_crash_leftovers_are_ignored_and_cleaned(tmp_path):
    registry = ModelRegistry(tmp_path)
    v1 = registry.add_version(_checkpoint(tmp_path, "a.pt"), {})
    registry.set_active(v1, "registered")
    half = registry.root / ".tmp-v0002-999"  # a crash mid add_version
    half.mkdir()
    (half / "model.pt").write_bytes(b"half")
    (registry.root / "v0003").mkdir()  # a folder without model.pt is not a version
    (registry.root / ".tmp-active-999").write_text("{garbage")  # a crash mid pointer write
    with open(registry.root / "history.jsonl", "a") as handle:
        handle.write('{"event": "torn')  # a crash mid append
    assert registry.versions() == [v1] and registry.active() == v1
    assert len(registry.history()) == 1
    registry.clean_temporary()
    assert not half.exists() and not (registry.root / ".tmp-active-999").exists()
    assert registry.add_version(_checkpoint(tmp_path, "b.pt"), {}) == "v0002"


def test_pointer_to_missing_or_torn_falls_back_to_newest_complete(tmp_path):
    registry = ModelRegistry(tmp_path)
    for name in ("a", "b"):
        registry.add_version(_checkpoint(tmp_path, name + ".pt"), {})
    write_json_atomic(registry.root / "active", {"version": "v0007"})
    assert registry.active() == "v0002"
    (registry.root / "active").write_text("{not json")
    assert registry.active() == "v0002"


def test_write_atomic_leaves_no_temp_file(tmp_path):
    write_json_atomic(tmp_path / "x.json", {"a": 1})
    write_json_atomic(tmp_path / "x.json", {"a": 2})
    assert json.loads((tmp_path / "x.json").read_text()) == {"a": 2}
    assert os.listdir(tmp_path) == ["x.json"]


def test_ensure_base_registers_once_and_again_when_the_configured_model_changes(tmp_path):
    registry = ModelRegistry(tmp_path / "models")
    configured = _checkpoint(tmp_path, "m.pt", b"one")
    first = ensure_base(registry, configured)
    assert registry.active() == "v0001" and first.read_bytes() == b"one"
    assert ensure_base(registry, configured) == first and registry.versions() == ["v0001"]
    v2 = registry.add_version(_checkpoint(tmp_path, "tuned.pt", b"tuned"), {})
    registry.set_active(v2, "promoted")
    assert ensure_base(registry, configured).read_bytes() == b"tuned"  # the promoted model is kept
    configured.write_bytes(b"two")  # the operator installed a new model
    assert ensure_base(registry, configured).read_bytes() == b"two"
    assert registry.active() == "v0003"


def test_model_command_lists_and_rolls_back(tmp_path, capsys):
    from cosmo_edge.cli import main

    registry = ModelRegistry.in_state_dir(tmp_path)
    registry.set_active(
        registry.add_version(_checkpoint(tmp_path, "a.pt"), {"source": "configured"}), "registered"
    )
    tuned = {
        "source": "finetune",
        "parent": "v0001",
        "holdout": {"candidate": {"accuracy": 0.9, "macro_f1": 0.8}},
    }
    registry.set_active(registry.add_version(_checkpoint(tmp_path, "b.pt"), tuned), "promoted")
    assert main(["model", "list", "--state-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "* v0002" in out and "0.900" in out and "finetune" in out
    assert main(["model", "rollback", "--state-dir", str(tmp_path)]) == 0
    assert registry.active() == "v0001"
    assert main(["model", "rollback", "--state-dir", str(tmp_path)]) == 0  # previous is v0002 again
    assert registry.active() == "v0002"
    assert main(["model", "rollback", "--to", "v0009", "--state-dir", str(tmp_path)]) == 1
    assert main(["model", "list", "--state-dir", str(tmp_path / "none")]) == 1

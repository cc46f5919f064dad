"""LabelStore: durability across reopen, idempotence, conflicts, file mode, schema, iteration."""

import os
import pathlib
import sqlite3
import stat

import numpy as np
import pytest
from labels_support import LABEL_NAMES, make_window

from cosmo_edge.labels import LabelConflictError, LabelMessage, LabelStore, LabelStoreError, stack_windows
from cosmo_edge.labels.records import ArrayCodecError, decode_array, encode_array
from cosmo_edge.labels.store import SCHEMA_VERSION, store_path


def message(message_id: str, activity: str = "walk", session: str = "run1") -> LabelMessage:
    return LabelMessage(message_id, activity, session, t_start_ns=1, t_end_ns=2)


def test_rows_survive_reopen_with_exact_arrays(tmp_path: pathlib.Path) -> None:
    windows = [make_window(i, with_depth=True) for i in range(3)]
    with LabelStore.in_state_dir(tmp_path / "state") as store:
        result = store.add_label(message("m1"), windows)
        assert (result.stored, result.duplicate, result.window_ids) == (3, False, [0, 1, 2])
    with LabelStore(store_path(tmp_path / "state")) as store:
        got = list(store.iter_windows())
        assert store.counts() == {"walk": 3}
        assert store.integrity_check() == "ok"
    assert [w.window_id for w in got] == [0, 1, 2]
    for stored, original in zip(got, windows):
        assert list(stored.inputs) == ["imu", "skeleton", "depth"]
        for name, array in original.inputs.items():
            assert stored.inputs[name].dtype == array.dtype
            np.testing.assert_array_equal(stored.inputs[name], array)
        assert stored.present == original.present
        assert (stored.t_start_ns, stored.t_end_ns) == (original.t_start_ns, original.t_end_ns)
        assert stored.message_id == "m1" and stored.activity == "walk"


def test_wal_full_sync_and_private_file_mode(tmp_path: pathlib.Path) -> None:
    old_umask = os.umask(0o022)
    try:
        store = LabelStore.in_state_dir(tmp_path / "state")
    finally:
        os.umask(old_umask)
    store.add_label(message("m1"), [make_window(0)])
    conn = sqlite3.connect(str(store.path))
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store._conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    for path in (store.path, pathlib.Path(f"{store.path}-wal"), pathlib.Path(f"{store.path}-shm")):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert stat.S_IMODE(store.path.parent.stat().st_mode) == 0o700
    conn.close()
    store.close()


def test_existing_world_readable_file_is_made_private(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "labels.sqlite3"
    path.touch(mode=0o644)
    os.chmod(path, 0o644)
    LabelStore(path).close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_duplicates_add_no_rows(tmp_path: pathlib.Path) -> None:
    store = LabelStore(tmp_path / "labels.sqlite3")
    windows = [make_window(i) for i in range(4)]
    store.add_label(message("m1"), windows[:3])
    again = store.add_label(message("m1"), windows[:3])
    assert again.duplicate and again.stored == 0 and again.window_ids == [0, 1, 2]
    same_windows_new_id = store.add_label(message("m2"), windows[1:3])
    assert same_windows_new_id.duplicate and same_windows_new_id.stored == 0
    recorded = store.find_event("m2")  # nothing new, but the id is recorded: it cannot be reused
    assert recorded is not None and (recorded.activity, recorded.window_ids) == ("walk", [1, 2])
    partly_new = store.add_label(message("m3"), windows[2:4])
    assert (partly_new.stored, partly_new.duplicate) == (1, False)
    rows = store._conn.execute("SELECT COUNT(*) FROM labeled_windows").fetchone()[0]
    events = store._conn.execute("SELECT COUNT(*) FROM label_events").fetchone()[0]
    inputs = store._conn.execute("SELECT COUNT(*) FROM window_inputs").fetchone()[0]
    assert (rows, events, inputs) == (4, 3, 8)
    # The same window id in another daemon run is another window.
    assert store.add_label(message("m4", session="run2"), windows[:1]).stored == 1
    store.close()


def test_conflicting_label_changes_nothing(tmp_path: pathlib.Path) -> None:
    store = LabelStore(tmp_path / "labels.sqlite3")
    store.add_label(message("m1"), [make_window(0), make_window(1)])
    before = store.last_row_id()
    with pytest.raises(LabelConflictError, match="1 \\(walk\\)"):
        store.add_label(message("m2", activity="sit"), [make_window(1), make_window(2)])
    with pytest.raises(LabelConflictError, match="already used"):
        store.add_label(message("m1", activity="sit"), [make_window(5)])
    assert store.last_row_id() == before and store.counts() == {"walk": 2}
    assert store.find_event("m2") is None
    store.close()


def test_new_since_newest_and_counts(tmp_path: pathlib.Path) -> None:
    store = LabelStore(tmp_path / "labels.sqlite3")
    assert store.last_row_id() == 0 and store.new_since(0) == 0
    store.add_label(message("m1"), [make_window(i) for i in range(3)])
    mark = store.last_row_id()
    store.add_label(message("m2", activity="sit"), [make_window(i) for i in range(3, 8)])
    assert store.new_since(mark) == 5 and store.new_since(0) == 8
    assert store.counts() == {"sit": 5, "walk": 3}
    newest = store.newest(2)
    assert [w.window_id for w in newest] == [7, 6] and not newest[0].inputs
    assert [w.window_id for w in store.iter_windows(since_row_id=mark, modalities=["imu"])][:2] == [3, 4]
    assert list(next(store.iter_windows(modalities=["imu"])).inputs) == ["imu"]
    store.close()


def test_stack_windows_for_training(tmp_path: pathlib.Path) -> None:
    store = LabelStore(tmp_path / "labels.sqlite3")
    store.add_label(
        message("m1", activity="sit"),
        [make_window(0), make_window(1, present={"imu": True, "skeleton": False})],
    )
    store.add_label(message("m2", activity="jump"), [make_window(2)])
    inputs, labels, present = stack_windows(list(store.iter_windows()), LABEL_NAMES, ["imu", "skeleton"])
    assert inputs["imu"].shape == (2, 120, 6) and inputs["skeleton"].shape == (2, 40, 20, 3)
    np.testing.assert_array_equal(labels, [1, 1])  # "jump" is not a class of this model: skipped
    np.testing.assert_array_equal(present, [[1, 1], [1, 0]])
    store.close()


def test_schema_version_and_newer_schema_refused(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "labels.sqlite3"
    with LabelStore(path) as store:
        assert store.schema_version() == SCHEMA_VERSION
    with LabelStore(path) as store:  # reopening applies nothing twice
        assert store._conn.execute("SELECT COUNT(*) FROM schema_version").fetchone()[0] == SCHEMA_VERSION
    conn = sqlite3.connect(str(path))
    conn.execute("INSERT INTO schema_version VALUES (?, 0)", (SCHEMA_VERSION + 1,))
    conn.commit()
    conn.close()
    with pytest.raises(LabelStoreError, match="newer than this code"):
        LabelStore(path)


def test_readonly_and_not_a_store(tmp_path: pathlib.Path) -> None:
    with pytest.raises(LabelStoreError, match="no label store"):
        LabelStore(tmp_path / "missing.sqlite3", readonly=True)
    assert not (tmp_path / "missing.sqlite3").exists()
    junk = tmp_path / "junk.sqlite3"
    junk.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(LabelStoreError, match="not a usable label store"):
        LabelStore(junk)
    path = tmp_path / "labels.sqlite3"
    LabelStore(path).close()
    with LabelStore(path, readonly=True) as store:
        assert store.counts() == {}
        with pytest.raises(LabelStoreError, match="read-only"):
            store.add_label(message("m1"), [make_window(0)])


def test_array_codec_round_trip_and_refusals() -> None:
    for array in (
        np.arange(12, dtype=np.int64).reshape(3, 4),
        np.zeros((40, 60, 80), np.float32),
        np.float32(3),
    ):
        dtype, shape, codec, data = encode_array(array)
        np.testing.assert_array_equal(decode_array(dtype, shape, codec, data), array)
    assert encode_array(np.zeros((40, 60, 80), np.float32))[2] == "zlib"
    with pytest.raises(ArrayCodecError):
        encode_array(np.array([object()]))
    with pytest.raises(ArrayCodecError):
        decode_array("<f4", "[3]", "raw", b"\x00" * 8)
    with pytest.raises(ArrayCodecError):
        decode_array("<f4", "[1]", "pickle", b"\x00" * 4)

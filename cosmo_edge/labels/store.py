"""Durable SQLite store of labeled windows for on-device fine-tuning.

Guarantees:

- a call that returns has committed: WAL journal with ``synchronous=FULL`` fsyncs the log on every
  commit, so a label acknowledged after :meth:`LabelStore.add_label` survives a crash or power cut;
- one label message is one ``BEGIN IMMEDIATE`` transaction: all its windows or none;
- idempotent: a message id already stored, or windows that already carry the same label, add no
  windows (the result says ``duplicate``); a window labeled with a different class is a conflict and
  the whole message is refused (:class:`LabelConflictError`);
- every accepted message id is recorded, also when all its windows were labeled already under
  another id, so the id can never be reused for another label and a retry stays a duplicate;
- windows are stored exactly as the model sees them (prepared, not normalised, missing modalities
  as their zero arrays with ``present`` False), as raw bytes plus dtype and shape (zlib for large
  arrays, see ``cosmo_edge.labels.records``); nothing is pickled;
- the database file (and so its ``-wal``/``-shm`` files, which SQLite creates with the same mode) is
  ``0600``; its directory is created ``0700``.

Windows are keyed by ``(session, window_id)``: the daemon's window ids restart at 0 with every run,
so each run passes its own ``session`` string. Row ids only grow (AUTOINCREMENT), which makes
:meth:`LabelStore.new_since` a cheap fine-tuning trigger. Written for SQLite >= 3.22 (Ubuntu 18.04):
no UPSERT, no RETURNING.
"""

import json
import logging
import os
import pathlib
import sqlite3
import threading
import time
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple, Union
from urllib.parse import quote

import numpy as np

from cosmo_edge.labels.records import AddResult, LabeledWindow, LabelMessage, decode_array, encode_array

logger = logging.getLogger(__name__)

DB_NAME = "labels.sqlite3"
BUSY_TIMEOUT_S = 10.0

# version -> statements; append new versions, never edit applied ones.
MIGRATIONS: Dict[int, Tuple[str, ...]] = {
    1: (
        """CREATE TABLE label_events (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            message_id TEXT NOT NULL UNIQUE,
            activity TEXT NOT NULL,
            session TEXT NOT NULL,
            t_start_ns INTEGER,
            t_end_ns INTEGER,
            requested_window_ids TEXT,
            window_ids TEXT NOT NULL,
            stored INTEGER NOT NULL,
            received_unix_ns INTEGER NOT NULL
        )""",
        """CREATE TABLE labeled_windows (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            session TEXT NOT NULL,
            window_id INTEGER NOT NULL,
            t_start_ns INTEGER NOT NULL,
            t_end_ns INTEGER NOT NULL,
            activity TEXT NOT NULL,
            event_id INTEGER NOT NULL REFERENCES label_events(id),
            message_id TEXT NOT NULL,
            received_unix_ns INTEGER NOT NULL,
            UNIQUE (session, window_id)
        )""",
        "CREATE INDEX labeled_windows_activity ON labeled_windows (activity)",
        """CREATE TABLE window_inputs (
            row_id INTEGER NOT NULL REFERENCES labeled_windows(id) ON DELETE CASCADE,
            modality TEXT NOT NULL,
            position INTEGER NOT NULL,
            present INTEGER NOT NULL,
            dtype TEXT NOT NULL,
            shape TEXT NOT NULL,
            codec TEXT NOT NULL,
            data BLOB NOT NULL,
            PRIMARY KEY (row_id, modality)
        )""",
    ),
}
SCHEMA_VERSION = max(MIGRATIONS)
PathLike = Union[str, "os.PathLike[str]"]


class LabelStoreError(RuntimeError):
    """The store cannot be opened or used (newer schema, not a label store, read-only write)."""


class LabelConflictError(LabelStoreError):
    """Windows already carry another label, or a message id was reused for a different label."""


def store_path(state_dir: PathLike) -> pathlib.Path:
    """The label database inside the daemon's state directory."""
    return pathlib.Path(state_dir) / DB_NAME


def _create_private_file(path: pathlib.Path) -> None:
    """Create ``path`` (and its directory) readable by the owner only, before SQLite opens it."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    descriptor = os.open(str(path), os.O_RDWR | os.O_CREAT, 0o600)
    os.close(descriptor)
    if path.stat().st_mode & 0o077:
        logger.warning("%s was readable by others; setting mode 0600", path)
    os.chmod(str(path), 0o600)


class LabelStore:
    """The label database; one instance may be shared between threads (calls are serialised).

    Use one instance per process; other processes (the fine-tuner, ``cosmo-edge labels``) open
    their own and see every committed label.
    """

    def __init__(self, path: PathLike, readonly: bool = False) -> None:
        self.path = pathlib.Path(path)
        self.readonly = readonly
        self._lock = threading.Lock()
        if readonly:
            if not self.path.is_file():
                raise LabelStoreError(f"no label store at {self.path}")
            uri = f"file:{quote(str(self.path.resolve()))}?mode=ro"
            self._conn = sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT_S, check_same_thread=False)
        else:
            _create_private_file(self.path)
            self._conn = sqlite3.connect(
                str(self.path), timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
            )
        try:
            self._configure()
        except LabelStoreError:
            self._conn.close()
            raise
        except sqlite3.DatabaseError as exc:
            self._conn.close()
            raise LabelStoreError(f"{self.path}: not a usable label store ({exc})") from exc

    @classmethod
    def in_state_dir(cls, state_dir: PathLike, readonly: bool = False) -> "LabelStore":
        """Open (or create) ``<state_dir>/labels.sqlite3``."""
        return cls(store_path(state_dir), readonly=readonly)

    def _configure(self) -> None:
        conn = self._conn
        conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        conn.execute("PRAGMA foreign_keys = ON")
        if not self.readonly:
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise LabelStoreError(f"{self.path}: cannot switch to WAL journal (got {mode})")
            conn.execute("PRAGMA synchronous = FULL")
            self._migrate()
        version = self.schema_version()
        if version != SCHEMA_VERSION:
            raise LabelStoreError(
                f"{self.path}: label store schema {version}, this code reads {SCHEMA_VERSION}"
            )

    def _migrate(self) -> None:
        """Apply every migration above the stored version, in one transaction."""
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_version "
                "(version INTEGER PRIMARY KEY, applied_unix_ns INTEGER NOT NULL)"
            )
            current = conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version").fetchone()[0]
            if current > SCHEMA_VERSION:
                raise LabelStoreError(
                    f"{self.path}: label store schema {current} is newer than this code ({SCHEMA_VERSION})"
                )
            for version in sorted(v for v in MIGRATIONS if v > current):
                for statement in MIGRATIONS[version]:
                    conn.execute(statement)
                conn.execute("INSERT INTO schema_version VALUES (?, ?)", (version, time.time_ns()))
                logger.info("label store %s: applied schema version %d", self.path, version)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def schema_version(self) -> int:
        """The schema version stored in the database (0 for an empty file)."""
        with self._lock:
            try:
                row = self._conn.execute("SELECT MAX(version) FROM schema_version").fetchone()
            except sqlite3.OperationalError:
                return 0
        return int(row[0] or 0)

    def close(self) -> None:
        """Close the connection (idempotent)."""
        with self._lock:
            self._conn.close()

    def __enter__(self) -> "LabelStore":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def find_event(self, message_id: str) -> Optional[AddResult]:
        """The stored result of message ``message_id`` (as a duplicate), or None."""
        with self._lock:
            row = self._conn.execute(
                "SELECT activity, window_ids FROM label_events WHERE message_id = ?", (message_id,)
            ).fetchone()
        if row is None:
            return None
        return AddResult(duplicate=True, stored=0, window_ids=json.loads(row[1]), activity=row[0])

    def add_label(self, message: LabelMessage, windows: Sequence[Any]) -> AddResult:
        """Store ``windows`` (``cosmo_edge.windows.Window``-like) under ``message``; durable on return.

        Raises LabelConflictError (nothing written) when a window already has another label or
        the message id was stored with another activity.
        """
        if self.readonly:
            raise LabelStoreError(f"{self.path} is open read-only")
        if not windows:
            raise ValueError("add_label: no windows")
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                result = self._add_locked(message, windows)
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")  # nothing to write for a known id: releases the lock only
        return result

    def _add_locked(self, message: LabelMessage, windows: Sequence[Any]) -> AddResult:
        conn = self._conn
        window_ids = [int(w.window_id) for w in windows]
        row = conn.execute(
            "SELECT activity, window_ids FROM label_events WHERE message_id = ?", (message.message_id,)
        ).fetchone()
        if row is not None:
            if row[0] != message.activity:
                raise LabelConflictError(f"id {message.message_id!r} was already used to label {row[0]!r}")
            return AddResult(duplicate=True, stored=0, window_ids=json.loads(row[1]), activity=row[0])
        new: List[Any] = []
        conflicts: List[str] = []
        for window in windows:
            found = conn.execute(
                "SELECT activity FROM labeled_windows WHERE session = ? AND window_id = ?",
                (message.session, int(window.window_id)),
            ).fetchone()
            if found is None:
                new.append(window)
            elif found[0] != message.activity:
                conflicts.append(f"{window.window_id} ({found[0]})")
        if conflicts:
            raise LabelConflictError(f"windows already labeled otherwise: {', '.join(conflicts[:10])}")
        self._insert(message, window_ids, new)  # also with no new window: the id must be recorded
        return AddResult(duplicate=not new, stored=len(new), window_ids=window_ids, activity=message.activity)

    def _insert(self, message: LabelMessage, window_ids: List[int], new: Sequence[Any]) -> None:
        """Write the event, its new windows (maybe none) and their arrays (in the caller's transaction)."""
        conn = self._conn
        received_ns = time.time_ns()
        requested = message.requested_window_ids
        event = (
            message.message_id, message.activity, message.session, message.t_start_ns, message.t_end_ns,
            None if requested is None else json.dumps([int(i) for i in requested]), json.dumps(window_ids),
            len(new), received_ns,
        )  # fmt: skip
        event_id = conn.execute(
            "INSERT INTO label_events (message_id, activity, session, t_start_ns, t_end_ns, "
            "requested_window_ids, window_ids, stored, received_unix_ns) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            event,
        ).lastrowid
        for window in new:
            row_id = conn.execute(
                "INSERT INTO labeled_windows (session, window_id, t_start_ns, t_end_ns, activity, event_id, "
                "message_id, received_unix_ns) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (message.session, int(window.window_id), int(window.t_start_ns), int(window.t_end_ns),
                 message.activity, event_id, message.message_id, received_ns),
            ).lastrowid  # fmt: skip
            for position, (name, array) in enumerate(window.inputs.items()):
                present = int(bool(window.present.get(name, False)))
                dtype, shape, codec, data = encode_array(array)
                conn.execute(
                    "INSERT INTO window_inputs VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (row_id, name, position, present, dtype, shape, codec, sqlite3.Binary(data)),
                )
        logger.info(
            "stored %d windows labeled %r (message %s)", len(new), message.activity, message.message_id
        )

    def counts(self) -> Dict[str, int]:
        """Stored windows per activity, largest first."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT activity, COUNT(*) FROM labeled_windows GROUP BY activity ORDER BY 2 DESC, 1"
            ).fetchall()
        return {str(a): int(n) for a, n in rows}

    def last_row_id(self) -> int:
        """Highest labeled-window row id (0 when empty); pass it to :meth:`new_since` later."""
        with self._lock:
            return int(self._conn.execute("SELECT COALESCE(MAX(id), 0) FROM labeled_windows").fetchone()[0])

    def new_since(self, row_id: int) -> int:
        """Labeled windows stored after row ``row_id`` (the fine-tuning trigger)."""
        with self._lock:
            return int(
                self._conn.execute(
                    "SELECT COUNT(*) FROM labeled_windows WHERE id > ?", (int(row_id),)
                ).fetchone()[0]
            )

    def newest(self, limit: int = 10) -> List[LabeledWindow]:
        """The ``limit`` most recently stored windows (without arrays), newest first."""
        return self._records("ORDER BY id DESC LIMIT ?", (int(limit),))

    def iter_windows(
        self, since_row_id: int = 0, modalities: Optional[Sequence[str]] = None
    ) -> Iterator[LabeledWindow]:
        """Windows after ``since_row_id`` in storage order, with arrays (``modalities``: all if None)."""
        last = int(since_row_id)
        while True:
            batch = self._records("WHERE id > ? ORDER BY id LIMIT 64", (last,))
            if not batch:
                return
            for record in batch:
                record.inputs = self._inputs(record.row_id, modalities)
                yield record
            last = batch[-1].row_id

    def _records(self, tail: str, params: Tuple[Any, ...]) -> List[LabeledWindow]:
        query = (
            "SELECT id, session, window_id, t_start_ns, t_end_ns, activity, message_id, received_unix_ns "
            f"FROM labeled_windows {tail}"
        )
        with self._lock:
            rows = self._conn.execute(query, params).fetchall()
            records = [LabeledWindow(*row) for row in rows]
            for record in records:
                present = self._conn.execute(
                    "SELECT modality, present FROM window_inputs WHERE row_id = ? ORDER BY position",
                    (record.row_id,),
                ).fetchall()
                record.present = {str(m): bool(p) for m, p in present}
        return records

    def _inputs(self, row_id: int, modalities: Optional[Sequence[str]]) -> Dict[str, np.ndarray]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT modality, dtype, shape, codec, data FROM window_inputs "
                "WHERE row_id = ? ORDER BY position",
                (row_id,),
            ).fetchall()
        return {
            str(name): decode_array(dtype, shape, codec, data)
            for name, dtype, shape, codec, data in rows
            if modalities is None or name in modalities
        }

    def integrity_check(self) -> str:
        """SQLite's ``PRAGMA integrity_check`` result ("ok" when the file is sound)."""
        with self._lock:
            return str(self._conn.execute("PRAGMA integrity_check").fetchone()[0])

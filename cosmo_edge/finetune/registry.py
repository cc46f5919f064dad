"""Model versions in the daemon's state directory, with an atomically updated ``active`` pointer.

Layout under ``<state_dir>/models/`` (the ONNX/TensorRT caches share the folder; their names differ)::

    v0001/model.pt       the checkpoint (v0001 is a copy of the configured model)
    v0001/metrics.json   how it was made: source, round metrics, held-out evaluation, label row ids
    active               JSON {"version": "v0003", "previous": "v0002", "changed_unix_ns": ...}
    history.jsonl        one line per event: registered, promoted, rejected, rollback
    finetune.json        the label row id the last round consumed (trigger state)

Crash safety (``kill -9`` or power loss at any instant):

- a version directory is built as ``.tmp-<name>-<pid>`` and renamed into place after its files and
  the directory were fsynced, so ``vNNNN/`` is complete or absent;
- ``active`` and ``finetune.json`` are written to a temporary file, fsynced, ``os.replace``-d over the
  old one and the directory fsynced: a reader sees the old or the new pointer, never a torn one;
- the pointer only ever names a complete version, so the active model is always loadable;
  ``active_path`` still checks the file and falls back to the newest older complete version.

Integrity: ``metrics.json`` records the sha256 of the version's checkpoint (``model_sha256``), and
``verify`` compares the file against it. A checkpoint damaged after it was written (a flipped bit
still unpickles into a model with wrong weights, a truncated file does not unpickle at all) is
refused by the daemon, which then serves an older version (``cosmo_edge.daemon.learning``).
Versions written before the hash was recorded are not checked.

``history.jsonl`` is append-only and fsynced per line; a torn last line (crash mid-append) is skipped.
"""

import json
import logging
import os
import re
import shutil
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Union

logger = logging.getLogger(__name__)

MODEL_FILE = "model.pt"
METRICS_FILE = "metrics.json"
ACTIVE_FILE = "active"
HISTORY_FILE = "history.jsonl"
STATE_FILE = "finetune.json"
TMP_PREFIX = ".tmp-"
VERSION_RE = re.compile(r"^v(\d{4,})$")
PathLike = Union[str, "os.PathLike[str]"]


class RegistryError(RuntimeError):
    """The registry has no such version, nothing to roll back to, or a file is unreadable."""


def fsync_dir(path: Path) -> None:
    """fsync a directory so renames inside it survive a power cut."""
    descriptor = os.open(str(path), os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def write_atomic(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data``: temp file, fsync, ``os.replace``, fsync of the directory."""
    tmp = path.with_name(f"{TMP_PREFIX}{path.name}-{os.getpid()}")
    with open(str(tmp), "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(str(tmp), str(path))
    fsync_dir(path.parent)


def write_json_atomic(path: Path, value: Any) -> None:
    """``write_atomic`` of ``value`` as indented JSON."""
    write_atomic(path, (json.dumps(value, indent=2, sort_keys=True) + "\n").encode("utf-8"))


def _fsync_file(path: Path) -> None:
    with open(str(path), "rb") as handle:
        os.fsync(handle.fileno())


class ModelRegistry:
    """Versions, the active pointer, history and rollback; see the module docstring.

    One process writes (the daemon's fine-tune service, or ``cosmo-edge model rollback``); readers
    may be anywhere. Methods re-read the files every call, so another process's change is seen.
    """

    def __init__(self, root: PathLike) -> None:
        self.root = Path(root)
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)

    @classmethod
    def in_state_dir(cls, state_dir: PathLike) -> "ModelRegistry":
        """The registry of ``<state_dir>/models``."""
        return cls(Path(state_dir) / "models")

    # ------------------------------------------------------------------ versions

    def versions(self) -> List[str]:
        """Complete version names, oldest first."""
        names = [p.name for p in self.root.iterdir() if p.is_dir() and VERSION_RE.match(p.name)]
        return sorted((n for n in names if (self.root / n / MODEL_FILE).is_file()), key=_number)

    def model_path(self, version: str) -> Path:
        """The checkpoint of ``version`` (raises RegistryError when it does not exist)."""
        path = self.root / version / MODEL_FILE
        if not path.is_file():
            raise RegistryError(f"no model version {version!r} in {self.root}")
        return path

    def metrics(self, version: str) -> Dict[str, Any]:
        """The metrics JSON of ``version`` (empty when unreadable)."""
        try:
            return json.loads((self.root / version / METRICS_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            logger.warning("metrics of %s unreadable: %s", version, exc)
            return {}

    def verify(self, version: str) -> Path:
        """The checkpoint of ``version`` after checking it against its recorded sha256.

        Raises RegistryError when the file is missing or its bytes changed since it was registered;
        a version without a recorded hash (older registries) passes unchecked.
        """
        path = self.model_path(version)
        expected = self.metrics(version).get("model_sha256")
        if expected is None:
            logger.debug("model %s has no recorded sha256; not checked", version)
            return path
        actual = _sha256(path)
        if actual != expected:
            raise RegistryError(
                f"model {version} is damaged: {path} has sha256 {actual[:12]}, registered as {expected[:12]}"
            )
        return path

    def version_of(self, path: PathLike) -> Optional[str]:
        """The version whose checkpoint ``path`` is, or None for a file outside the registry."""
        path = Path(path)
        if path.name == MODEL_FILE and path.parent.parent == self.root and VERSION_RE.match(path.parent.name):
            return path.parent.name
        return None

    def add_version(self, checkpoint: PathLike, metrics: Dict[str, Any]) -> str:
        """Copy ``checkpoint`` in as the next version with ``metrics``; durable and complete on return."""
        existing = self.versions()
        number = _number(existing[-1]) + 1 if existing else 1
        name = f"v{number:04d}"
        tmp = self.root / f"{TMP_PREFIX}{name}-{os.getpid()}"
        if tmp.exists():
            shutil.rmtree(str(tmp))
        tmp.mkdir(mode=0o700)
        shutil.copyfile(str(checkpoint), str(tmp / MODEL_FILE))
        _fsync_file(tmp / MODEL_FILE)
        body = dict(
            metrics, version=name, created_unix_ns=time.time_ns(), model_sha256=_sha256(tmp / MODEL_FILE)
        )
        (tmp / METRICS_FILE).write_text(json.dumps(body, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        _fsync_file(tmp / METRICS_FILE)
        fsync_dir(tmp)
        os.rename(str(tmp), str(self.root / name))
        fsync_dir(self.root)
        logger.info("model registry: added %s (%s)", name, metrics.get("source", "?"))
        return name

    def clean_temporary(self) -> None:
        """Remove half-built version folders, round work folders and temp files a crash left behind.

        Only the process that writes the registry calls this, at its start (the daemon's service).
        """
        for path in self.root.glob(TMP_PREFIX + "*"):
            logger.info("model registry: removing leftover %s", path.name)
            if path.is_dir():
                shutil.rmtree(str(path), ignore_errors=True)
            else:
                path.unlink()

    # ------------------------------------------------------------------ active pointer

    def pointer(self) -> Dict[str, Any]:
        """The ``active`` JSON ({} when there is none or it is unreadable)."""
        try:
            value = json.loads((self.root / ACTIVE_FILE).read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            logger.error("active pointer unreadable (%s); using the newest version", exc)
            return {}
        return value if isinstance(value, dict) else {}

    def active(self) -> Optional[str]:
        """The active version: the pointer's when complete, else the newest complete one, else None."""
        versions = self.versions()
        named = self.pointer().get("version")
        if named in versions:
            return str(named)
        if named is not None:
            logger.error("active pointer names missing version %r; using the newest complete one", named)
        return versions[-1] if versions else None

    def active_path(self) -> Optional[Path]:
        """The active checkpoint, or None when the registry is empty."""
        version = self.active()
        return None if version is None else self.model_path(version)

    def set_active(self, version: str, event: str, **details: Any) -> None:
        """Point ``active`` at ``version`` (the old one becomes ``previous``) and log ``event``."""
        self.model_path(version)
        old = self.pointer()
        current = old.get("version") if old.get("version") in self.versions() else None
        previous = old.get("previous") if current == version else current
        pointer = {"version": version, "previous": previous, "changed_unix_ns": time.time_ns()}
        write_json_atomic(self.root / ACTIVE_FILE, pointer)
        self.log_event(event, version=version, previous=previous, **details)
        logger.info("model registry: %s -> %s (%s)", current, version, event)

    def rollback(self, to_version: Optional[str] = None) -> str:
        """Make ``to_version`` (default: the version active before the current one) active again."""
        current = self.active()
        target = to_version or self.pointer().get("previous")
        if not target:
            older = [v for v in self.versions() if current is None or _number(v) < _number(current)]
            target = older[-1] if older else None
        if not target or target == current:
            raise RegistryError(f"nothing to roll back to (active {current})")
        self.set_active(str(target), "rollback", rolled_back=current)
        return str(target)

    # ------------------------------------------------------------------ history and state

    def log_event(self, event: str, **details: Any) -> None:
        """Append one fsynced JSON line to ``history.jsonl``."""
        line = json.dumps(dict(details, event=event, unix_ns=time.time_ns()), sort_keys=True) + "\n"
        with open(str(self.root / HISTORY_FILE), "a", encoding="utf-8") as handle:
            handle.write(line)
            handle.flush()
            os.fsync(handle.fileno())

    def history(self) -> List[Dict[str, Any]]:
        """Every readable event, oldest first (a torn last line is skipped)."""
        path = self.root / HISTORY_FILE
        if not path.is_file():
            return []
        events = []
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            try:
                events.append(json.loads(line))
            except ValueError:
                logger.warning("history line %d unreadable, skipped", number)
        return events

    def state(self) -> Dict[str, Any]:
        """The fine-tune trigger state ({"last_row_id": 0} when none)."""
        try:
            value = json.loads((self.root / STATE_FILE).read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {"last_row_id": 0}
        except (OSError, ValueError) as exc:
            logger.warning("fine-tune state unreadable (%s); starting from row 0", exc)
            return {"last_row_id": 0}
        return value if isinstance(value, dict) else {"last_row_id": 0}

    def save_state(self, **values: Any) -> None:
        """Merge ``values`` into the trigger state, atomically."""
        state = self.state()
        state.update(values)
        write_json_atomic(self.root / STATE_FILE, state)


def _sha256(path: Path) -> str:
    from cosmo_edge.runtime.artifacts import sha256_file

    return sha256_file(path)


def _number(version: str) -> int:
    match = VERSION_RE.match(version)
    if match is None:
        raise RegistryError(f"not a version name: {version!r}")
    return int(match.group(1))


def ensure_base(registry: ModelRegistry, configured: PathLike) -> Path:
    """The checkpoint to serve: the registry's active one; the configured model is registered first.

    An empty registry gets ``configured`` as v0001 and active. When ``configured`` changed since it
    was registered (another sha256), it becomes a new version and active: the operator's new model
    wins over models fine-tuned from the old one.
    """
    from cosmo_edge.runtime.artifacts import sha256_file

    sha = sha256_file(configured)
    versions = registry.versions()
    if versions and registry.state().get("base_sha256") == sha:
        path = registry.active_path()
        assert path is not None
        return path
    version = registry.add_version(
        configured, {"source": "configured", "path": str(configured), "sha256": sha}
    )
    registry.set_active(version, "registered", path=str(configured))
    registry.save_state(base_sha256=sha, last_row_id=registry.state().get("last_row_id", 0))
    return registry.model_path(version)

"""The background fine-tuning thread: label store -> round -> promotion -> new artifact -> swap.

``FinetuneService`` polls once a second:

- it follows the registry's ``active`` pointer, so ``cosmo-edge model rollback`` run beside a live
  daemon is served from the next window on;
- when ``RoundTrigger`` says a round is due (N new labeled windows, or T minutes with at least one),
  it runs ``round.run_round`` in a niced worker process (``isolation="process"``) or in this thread,
  on a copy of the active model, in a fresh work folder under the registry (``.tmp-round-*``, removed
  afterwards and after a crash);
- a promoted candidate becomes a new version (``registry.add_version``); ``load`` then rebuilds its
  backend artifact (ONNX export / TensorRT engine, warm-up and self-test) here, off the inference
  thread; only when that worked does the ``active`` pointer move and ``swap`` hand the new predictor
  to the inference loop, which takes it between two windows;
- a rejected candidate, a skipped round or a failed one is logged in the registry history.

The label row id a round consumed is saved (``finetune.json``) after the round, so a crash mid-round
only means the next start trains on those labels again; labels themselves live in the SQLite store.
"""

import logging
import os
import shutil
import threading
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable, Dict, Optional

from cosmo_edge.finetune.registry import TMP_PREFIX, ModelRegistry
from cosmo_edge.finetune.round import RoundSettings, RoundSkipped, run_round
from cosmo_edge.finetune.trigger import RoundTrigger
from cosmo_edge.finetune.worker import WorkerError, run_worker

logger = logging.getLogger(__name__)

POLL_S = 1.0
ISOLATIONS = ("process", "thread")

LoadPredictor = Callable[[Path], Any]
Swap = Callable[[Any, str], None]


class FinetuneService(threading.Thread):
    """See the module docstring.

    Args:
        store: the daemon's ``LabelStore`` (only ``new_since``/``counts`` are called here).
        registry: the model registry in the state directory.
        settings: round settings (epochs, split, margin, threads).
        load: checkpoint path -> a loaded, warmed-up predictor (rebuilds the backend artifact).
        swap: (predictor, registry version) -> None; hands the predictor to inference.
        trigger: when to run; isolation: ``"process"`` or ``"thread"``; nice: worker niceness.
        round_timeout_s: a worker running longer is killed; metrics: ``cosmo_edge.metrics.Metrics``.
    """

    def __init__(
        self,
        store: Any,
        registry: ModelRegistry,
        settings: RoundSettings,
        load: LoadPredictor,
        swap: Swap,
        trigger: RoundTrigger,
        isolation: str = "process",
        nice: int = 10,
        round_timeout_s: float = 600.0,
        metrics: Optional[Any] = None,
        poll_s: float = POLL_S,
    ) -> None:
        super().__init__(name="finetune", daemon=True)
        if isolation not in ISOLATIONS:
            raise ValueError(f"isolation must be one of {ISOLATIONS}, got {isolation!r}")
        self.store = store
        self.registry = registry
        self.settings = settings
        self.load = load
        self.swap = swap
        self.trigger = trigger
        self.isolation = isolation
        self.nice = int(nice)
        self.round_timeout_s = float(round_timeout_s)
        self.metrics = metrics
        self.poll_s = float(poll_s)
        self.served_version = registry.active()
        self.counters: Dict[str, int] = {"rounds": 0, "promoted": 0, "rejected": 0, "skipped": 0, "failed": 0}
        self.last_result: Optional[Dict[str, Any]] = None
        self.busy = False
        self._stop_event = threading.Event()

    def stop(self) -> None:
        """Stop polling; a running worker is killed (its labels are trained on next time)."""
        self._stop_event.set()

    def run(self) -> None:
        self.registry.clean_temporary()
        try:
            self.resume_interrupted()
        except Exception:  # noqa: BLE001 - serving goes on with the active model
            logger.exception("could not finish an interrupted promotion")
        while not self._stop_event.wait(self.poll_s):
            try:
                self.follow_pointer()
                new = self.store.new_since(int(self.registry.state().get("last_row_id", 0)))
                reason = self.trigger.reason(new, time.monotonic())
                if reason is not None:
                    logger.info("fine-tune round due (%s: %d new labeled windows)", reason, new)
                    self.run_round_now()
            except Exception:  # noqa: BLE001 - the service must outlive one bad round
                self.counters["failed"] += 1
                logger.exception("fine-tune service iteration failed")
        logger.info("fine-tune service stopped: %s", self.counters)

    def resume_interrupted(self) -> None:
        """Finish a promotion a crash cut short: the newest version was judged better than the active
        one (its parent) and registered, but the pointer never moved and no outcome was logged."""
        versions, active = self.registry.versions(), self.registry.active()
        if not versions or versions[-1] == active:
            return
        newest = versions[-1]
        metrics = self.registry.metrics(newest)
        logged = {e.get("version") for e in self.registry.history()}
        if metrics.get("source") != "finetune" or metrics.get("parent") != active or newest in logged:
            return
        if not metrics.get("promote"):
            return
        logger.info("finishing the interrupted promotion of %s (parent %s)", newest, active)
        consumed = int(metrics.get("last_row_id", 0))
        if consumed > int(self.registry.state().get("last_row_id", 0)):  # the crash came before the save
            self.registry.save_state(last_row_id=consumed)
        summary = {"parent": active, "reason": metrics.get("reason"), "resumed": True}
        self._promote(newest, summary, None)

    def follow_pointer(self) -> None:
        """Serve the registry's active version when it changed behind our back (rollback)."""
        active = self.registry.active()
        if active is None or active == self.served_version:
            return
        logger.info("active model changed to %s outside this service; loading it", active)
        self.swap(self.load(self.registry.model_path(active)), active)
        self.served_version = active

    def run_round_now(self) -> Dict[str, Any]:
        """Run one round and promote or reject its candidate; returns the round's result dict."""
        self.trigger.started(time.monotonic())
        self.busy = True
        self.counters["rounds"] += 1
        active = self.registry.active()
        assert active is not None, "the registry has no model"
        work = self.registry.root / f"{TMP_PREFIX}round-{os.getpid()}-{self.counters['rounds']}"
        work.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        try:
            result = self._train(self.registry.model_path(active), work)
            if "skipped" in result:
                self.counters["skipped"] += 1
                self.registry.log_event("skipped", active=active, reason=result["skipped"])
                return result
            result["seconds"]["wall"] = round(time.monotonic() - started, 3)
            self._conclude(active, work / "candidate.pt", result)
            return result
        except WorkerError as exc:
            self.counters["failed"] += 1
            self.registry.log_event("failed", active=active, reason=str(exc))
            self._count("failed", time.monotonic() - started)
            logger.error("fine-tune round failed: %s", exc)
            return {"failed": str(exc)}
        finally:
            self.busy = False
            shutil.rmtree(str(work), ignore_errors=True)

    def _train(self, active_path: Path, work: Path) -> Dict[str, Any]:
        out = work / "candidate.pt"
        store_path = str(self.store.path)
        if self.isolation == "thread":
            try:
                return run_round(active_path, store_path, out, self.settings)
            except RoundSkipped as exc:
                return {"skipped": str(exc)}
        spec = {
            "active": str(active_path),
            "store": store_path,
            "out": str(out),
            "settings": asdict(self.settings),
            "nice": self.nice,
            "log_level": logging.getLevelName(logging.getLogger().getEffectiveLevel()),
        }
        return run_worker(spec, work, self._stop_event, self.round_timeout_s)

    def _conclude(self, active: str, candidate: Path, result: Dict[str, Any]) -> None:
        """Register, rebuild and swap a promoted candidate; log a rejected one."""
        self.last_result = result
        holdout = result["holdout"]
        summary = {
            "parent": active,
            "reason": result["reason"],
            "holdout_windows": holdout["windows"],
            "train_windows": result["train_windows"],
            "candidate": {k: holdout["candidate"][k] for k in ("accuracy", "macro_f1")},
            "active": {k: holdout["active"][k] for k in ("accuracy", "macro_f1")},
            "last_row_id": result["last_row_id"],
        }
        wall_s = result["seconds"].get("wall")
        if not result["promote"]:
            self.registry.save_state(last_row_id=int(result["last_row_id"]))
            self.counters["rejected"] += 1
            self.registry.log_event("rejected", **summary)
            self._count("rejected", wall_s)
            logger.info("candidate rejected: %s", result["reason"])
            return
        version = self.registry.add_version(candidate, dict(result, source="finetune", parent=active))
        self.registry.save_state(last_row_id=int(result["last_row_id"]))
        self._promote(version, summary, wall_s)

    def _promote(self, version: str, summary: Dict[str, Any], wall_s: Optional[float]) -> None:
        """Rebuild the backend artifact of ``version``, move the pointer, swap it into inference."""
        try:
            predictor = self.load(self.registry.model_path(version))
        except Exception as exc:  # noqa: BLE001 - a model that cannot be served is not promoted
            self.counters["failed"] += 1
            self.registry.log_event("rejected", version=version, **dict(summary, reason=f"artifact: {exc}"))
            self._count("failed", wall_s)
            logger.exception("candidate %s could not be built for the backend; not promoted", version)
            return
        self.registry.set_active(version, "promoted", **summary)
        self.swap(predictor, version)
        self.served_version = version
        self.counters["promoted"] += 1
        self._count("promoted", wall_s)
        logger.info("promoted %s: %s", version, summary.get("reason"))

    def _count(self, outcome: str, duration_s: Optional[float]) -> None:
        if self.metrics is None:
            return
        try:
            self.metrics.finetune_round(outcome, duration_s)
        except ValueError as exc:
            logger.warning("metrics: %s", exc)

    def status(self) -> Dict[str, Any]:
        """The fine-tuning part of the ``status`` message."""
        return {
            "counters": dict(self.counters),
            "busy": self.busy,
            "active_version": self.served_version,
            "isolation": self.isolation,
        }

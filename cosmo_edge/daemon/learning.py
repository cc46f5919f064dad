"""The daemon's label intake and background fine-tuning, built from the ``labels``/``finetune`` sections.

- ``serving_path``: with fine-tuning on, the model served is the registry's active version
  (``<state_dir>/models``; the configured model is registered as v0001 first);
- ``load_serving``: loads it, falling back to older complete versions and finally the configured
  model if a checkpoint does not load or no longer matches the sha256 it was registered with
  (logged), so the daemon always starts with a loadable, undamaged model;
- ``start``: opens the ``LabelStore`` in the state directory, starts the ``LabelServer`` on the
  ``RecentWindows`` buffer the inference loop fills, and the ``FinetuneService`` thread;
- ``stop``: stops the service (killing a running worker), then the label server, then closes the store.
"""

import logging
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

from cosmo_edge.config import DaemonConfig

logger = logging.getLogger(__name__)


class Learning:
    """Labels and fine-tuning of one daemon; see the module docstring."""

    def __init__(self, config: DaemonConfig) -> None:
        self.config = config
        self.state_dir = Path(config.state_dir)
        self.registry: Optional[Any] = None
        if config.finetune.enabled:
            from cosmo_edge.finetune.registry import ModelRegistry

            self.registry = ModelRegistry.in_state_dir(self.state_dir)
        self.store: Optional[Any] = None
        self.recent: Optional[Any] = None
        self.server: Optional[Any] = None
        self.service: Optional[Any] = None

    @property
    def enabled(self) -> bool:
        """True when labels or fine-tuning are configured."""
        return bool(self.config.labels.enabled or self.config.finetune.enabled)

    def candidates(self, configured: Path) -> List[Path]:
        """Checkpoints to try, best first: active, older versions, the configured model."""
        if self.registry is None:
            return [configured]
        from cosmo_edge.finetune.registry import ensure_base

        active = ensure_base(self.registry, configured)
        older = [self.registry.model_path(v) for v in reversed(self.registry.versions())]
        return [active] + [p for p in older if p != active] + [configured]

    def load_serving(self, configured: Path, load: Callable[[Path], Any]) -> Any:
        """The first candidate that loads; raises the last error when none does."""
        error: Optional[Exception] = None
        for path in self.candidates(configured):
            try:
                version = self.registry.version_of(path) if self.registry is not None else None
                if version is not None:
                    self.registry.verify(version)
                return load(path)
            except Exception as exc:  # noqa: BLE001 - any unloadable checkpoint: try the next one
                error = exc
                logger.error("model %s does not load (%s); trying an older one", path, exc)
        assert error is not None
        raise error

    def make_recent(self, hop_s: float) -> Optional[Any]:
        """The window buffer labels refer to (None without label intake)."""
        if not self.config.labels.enabled:
            return None
        from cosmo_edge.labels import RecentWindows, capacity_for

        self.recent = RecentWindows(capacity_for(self.config.labels.buffer_s, hop_s))
        return self.recent

    def start(
        self,
        label_names: List[str],
        load: Callable[[Path], Any],
        swap: Callable[[Any, str], None],
        metrics: Optional[Any] = None,
    ) -> None:
        """Open the store, start label intake and the fine-tune service (as configured)."""
        if not self.enabled:
            return
        from cosmo_edge.labels import LabelServer, LabelStore

        self.store = LabelStore.in_state_dir(self.state_dir)
        labels = self.config.labels
        if labels.enabled and self.recent is not None:
            curve = labels.curve
            self.server = LabelServer(
                self.store,
                label_names,
                self.recent.for_span,
                self.recent.by_id,
                endpoint=labels.endpoint,
                curve_secret_key_file=curve.server_secret_key_file if curve else None,
                curve_clients_dir=curve.authorized_clients_dir if curve else None,
            )
            self.server.start()
        if self.registry is not None:
            self.service = make_service(self.config, self.store, self.registry, load, swap, metrics)
            self.service.start()

    def stop(self) -> None:
        """Stop the service, the label server and close the store (safe to call twice)."""
        if self.service is not None:
            self.service.stop()
            self.service.join(5.0)
            self.service = None
        if self.server is not None:
            self.server.stop()
            self.server = None
        if self.store is not None:
            self.store.close()
            self.store = None

    def status(self) -> Dict[str, Any]:
        """The labels / fine-tune part of the ``status`` message."""
        body: Dict[str, Any] = {}
        if self.server is not None:
            body["label_intake"] = dict(self.server.counters)  # "labels" holds the class names
        if self.service is not None:
            body["finetune"] = self.service.status()
        return body


def make_service(
    config: DaemonConfig,
    store: Any,
    registry: Any,
    load: Callable[[Path], Any],
    swap: Callable[[Any, str], None],
    metrics: Optional[Any] = None,
) -> Any:
    """A ``FinetuneService`` configured from the ``finetune`` section."""
    import time

    from cosmo_edge.finetune.round import RoundSettings
    from cosmo_edge.finetune.service import FinetuneService
    from cosmo_edge.finetune.trigger import RoundTrigger

    ft = config.finetune
    settings = RoundSettings(
        epochs=ft.epochs,
        t_iter_epochs=ft.t_iter_epochs,
        first_phase=ft.first_phase,
        holdout_fraction=ft.holdout_fraction,
        f1_margin=ft.f1_margin,
        threads=ft.threads,
    )
    trigger = RoundTrigger(ft.min_new_labels, ft.period_min * 60.0, time.monotonic())
    return FinetuneService(
        store,
        registry,
        settings,
        load,
        swap,
        trigger,
        isolation=ft.isolation,
        nice=ft.nice,
        round_timeout_s=ft.round_timeout_s,
        metrics=metrics,
    )

"""Operations around a running ``Daemon``: health endpoint, Prometheus metrics, progress-gated watchdog.

Kept apart from ``app.Daemon``: it reads the daemon's public state (sensor threads, their channels,
the inference loop, the publisher) once per ``refresh_period_s`` and taps the inference loop's
``publish`` callable to see each window's predict latency and missing modalities. Wiring::

    notifier = Notifier.from_environment()         # cosmo_edge.sdnotify
    with extending_timeout(notifier, step_s=60):   # a TensorRT build may outlast TimeoutStartSec=
        daemon.start()                             # (without sending READY=1 itself)
        ops = DaemonOperations(daemon, notifier)
        ops.start()                                # /healthz /readyz /metrics, refresh, watchdog
        ready = ops.wait_until_ready(100.0, stop)  # model warm, every sensor delivering, windows flowing
    if ready:
        notifier.ready(daemon.status_line())
    elif notifier.enabled:
        return 1                                   # under systemd: fail now, Restart= tries again
    daemon.run(stop)                               # without its own watchdog pings
    notifier.stopping()
    ops.stop()
    daemon.stop()

Watchdog stages: ``inference`` (the loop's window counter: one per due hop, empty windows included,
so only a loop stuck inside ``predict`` or the cutter stops it) and, when a sensor thread counts its
read-loop iterations in ``reads``, one ``sensor-<name>`` stage per sensor (a read that returns None on
timeout still counts; a read blocked in the kernel does not). A sensor counts as connected for
readiness while its thread is ``open`` and its newest sample is younger than the stale limit.
"""

import logging
import threading
import time
from typing import Any, Callable, Dict, Optional, Tuple

from cosmo_edge.health import DEFAULT_HOST, DEFAULT_PORT, HealthServer, HealthState
from cosmo_edge.metrics import Metrics
from cosmo_edge.publish import TOPIC_WINDOW
from cosmo_edge.sdnotify import Notifier
from cosmo_edge.watchdog import Watchdog
from drivers.base import BASE_COUNTERS

logger = logging.getLogger(__name__)

REFRESH_PERIOD_S = 1.0


class DaemonOperations:
    """Health, metrics and watchdog for one started ``Daemon``; see the module docstring.

    Args:
        daemon: a started ``cosmo_edge.daemon.app.Daemon`` (anything with the same attributes).
        notifier: systemd notifier for ``WATCHDOG=1`` and ``STATUS=`` (a disabled one is fine).
        host, port: health endpoint address (loopback only); port 0 picks a free one.
        refresh_period_s: how often daemon counters are copied into metrics and health (s).
        serve_http: False runs metrics and watchdog without the HTTP endpoint.
    """

    def __init__(
        self,
        daemon: Any,
        notifier: Notifier,
        host: str = DEFAULT_HOST,
        port: int = DEFAULT_PORT,
        refresh_period_s: float = REFRESH_PERIOD_S,
        serve_http: bool = True,
    ) -> None:
        self.daemon = daemon
        self.notifier = notifier
        self.refresh_period_s = float(refresh_period_s)
        self.stale_s = _stale_limit_s(daemon)
        sensors = list(daemon.sensors) + list(getattr(daemon, "failed_sensors", {}))
        # Liveness allows a few hops of delay; readiness wants a published window within the stale limit.
        hop_s = _host_s(daemon, daemon.config.window.hop_s)
        self.health = HealthState(
            sensors, liveness_timeout_s=max(10.0, 4 * hop_s), window_timeout_s=self.stale_s
        )
        self.metrics = Metrics()
        self.watchdog = Watchdog(notifier, on_stall=self._on_stall)
        self.server = HealthServer(self.health, self.metrics.registry, host, port) if serve_http else None
        self._last_windows = -1
        self._last_published = -1
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Register watchdog stages, tap inference, start the HTTP server and the refresh thread.

        A health port that cannot be bound is logged and skipped: the daemon runs on without it.
        """
        daemon = self.daemon
        predictor = daemon.predictor
        self.metrics.set_model(
            predictor.version, predictor.engine, path=str(getattr(daemon, "model_path", ""))
        )
        self.health.set_model(True, predictor.engine)  # load_predictor warmed it up before start() returned
        self._model_version = predictor.version
        learning = getattr(daemon, "learning", None)
        if learning is not None and learning.service is not None:
            learning.service.metrics = self.metrics  # fine-tune round outcomes and durations
        inference = daemon.inference
        self.watchdog.add_probe("inference", lambda: inference.counters["windows"])
        for name, thread in daemon.sensors.items():
            if hasattr(thread, "reads"):
                self.watchdog.add_probe(f"sensor-{name}", lambda t=thread: t.reads)
        inference.publish = self._tap(inference.publish, predictor.engine)
        if self.server is not None:
            try:
                self.server.start()
            except OSError as exc:
                logger.error("health endpoint not started (%s); metrics and watchdog run without it", exc)
                self.server = None
        self.refresh()
        self._thread = threading.Thread(target=self._run, name="ops-refresh", daemon=True)
        self._thread.start()
        self.watchdog.start()

    def stop(self) -> None:
        """Stop the watchdog (no more pings), the refresh thread and the HTTP server."""
        self.watchdog.stop()
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self.refresh_period_s + 2.0)
            self._thread = None
        if self.server is not None:
            self.server.stop()

    def wait_until_ready(self, timeout_s: float, stop: Optional[threading.Event] = None) -> bool:
        """Refresh until ``/readyz`` would answer 200; False after ``timeout_s`` or when ``stop`` is set."""
        stop = stop or threading.Event()
        deadline = time.monotonic() + timeout_s
        while True:
            self.refresh()
            ready, body = self.health.readiness()
            if ready:
                return True
            if stop.is_set() or time.monotonic() >= deadline:
                logger.warning("not ready after %.0f s: %s", timeout_s, "; ".join(body["reasons"]))
                return False
            stop.wait(0.2)

    # ------------------------------------------------------------------ refresh

    def refresh(self) -> None:
        """Copy the daemon's counters into health and metrics (one pass; cheap)."""
        daemon, metrics, health = self.daemon, self.metrics, self.health
        now_ns = time.monotonic_ns()
        for name, thread in daemon.sensors.items():
            counters = thread.counters()
            age_s = None if thread.last_sample_ns is None else (now_ns - thread.last_sample_ns) * 1e-9
            connected = thread.state == "open" and age_s is not None and age_s <= self.stale_s
            health.set_sensor(name, connected)
            # The thread reports only non-zero driver counters; absent ones are 0 (so dashboards see them).
            driver = dict.fromkeys(BASE_COUNTERS, 0)
            driver.update(counters.get("driver", {}))
            metrics.update_driver(name, driver, connected)
            metrics.update_ring(name, thread.channel.ring.drops)
            timebase = thread.channel.timebase
            if timebase is not None:
                locked = timebase.state == "locked"
                metrics.update_clock(
                    name, timebase.drift_ppm, locked=locked, resets=timebase.counters["resets"]
                )
        for name in getattr(daemon, "failed_sensors", {}):
            health.set_sensor(name, False)
        inference = daemon.inference
        windows, published = inference.counters["windows"], inference.counters["published"]
        if windows != self._last_windows:
            self._last_windows = windows
            health.loop_tick()
        if published != self._last_published:
            if self._last_published >= 0:
                health.window_cut()
            self._last_published = published
        metrics.update_windows(inference.cutter.counters)
        if daemon.publisher is not None:
            metrics.update_publisher(daemon.publisher.counters())
        metrics.update_watchdog(self.watchdog.counters)
        self._refresh_learning()

    def _refresh_learning(self) -> None:
        """Model version after a fine-tune swap or rollback, labeled windows, label requests by outcome."""
        daemon, metrics = self.daemon, self.metrics
        predictor = daemon.predictor
        if predictor is not None and predictor.version != getattr(self, "_model_version", None):
            self._model_version = predictor.version
            path = getattr(getattr(predictor, "artifact", None), "path", None)
            metrics.set_model(predictor.version, predictor.engine, path=str(path or ""))
        learning = getattr(daemon, "learning", None)
        if learning is not None and learning.store is not None:
            metrics.set_label_counts(learning.store.counts())
        if learning is not None and learning.server is not None:
            metrics.update_label_server(learning.server.counters)

    def readiness(self) -> Tuple[bool, Dict[str, Any]]:
        """What ``/readyz`` answers now (after a refresh)."""
        self.refresh()
        return self.health.readiness()

    def _run(self) -> None:
        while not self._stop.wait(self.refresh_period_s):
            try:
                self.refresh()
            except Exception:  # a refresh bug must not end health reporting for good
                logger.exception("operations refresh failed")

    def _tap(self, publish: Callable[[str, Any], Any], engine: str) -> Callable[[str, Any], Any]:
        """``publish`` that first records each window's latency and missing modalities."""
        metrics = self.metrics

        def tapped(topic: str, payload: Any) -> Any:
            if topic == TOPIC_WINDOW:
                metrics.observe_inference(float(payload.get("latency_ms", 0.0)) / 1e3, engine)
                metrics.observe_window(payload.get("missing", {}))
            return publish(topic, payload)

        return tapped

    def _on_stall(self, stages: Any) -> None:
        self.notifier.status(f"stalled: {', '.join(stages)}; {self.daemon.status_line()}")


def _host_s(daemon: Any, sensor_s: float) -> float:
    """Sensor seconds on the host clock (the simulator may run faster than real time)."""
    timing = getattr(daemon, "timing", None)
    return float(timing.host_s(sensor_s)) if timing is not None else float(sensor_s)


def _stale_limit_s(daemon: Any) -> float:
    """A sensor silent for longer than the window's stale limit is not connected (host s)."""
    return _host_s(daemon, daemon.config.window.stale_s)

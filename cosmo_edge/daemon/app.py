"""The daemon's lifecycle: wire drivers -> timebase -> rings -> windows -> backend -> publisher.

``Daemon(config).start()`` does, in this order (each step logs what it did):

1. load the model and pick the backend (``select_backend``; ONNX exports and TensorRT engines are
   cached under ``state_dir``), warm it up and self-test it;
2. bind the publisher (``status`` every ``status_period_s`` from ``Daemon.status``);
3. start the in-process simulator when the config has a ``simulator`` section;
4. build one driver, channel (timebase + ring, sized from the config and logged) and ``SensorThread``
   per sensor whose modality the model takes, and the window cutter for the model's modalities;
5. start the sensor threads and the inference loop, then label intake and background fine-tuning
   (``learning.Learning``; with fine-tuning on, step 1 serves the model registry's active version and
   promoted models are swapped into the inference loop between two windows), and wait (at most
   ``ready_timeout_s``) until every sensor opened.

systemd notifications, the health endpoint, metrics and the progress-gated watchdog live outside this
class (``cosmo_edge.daemon.operations``, wired by ``cosmo-edge run``), which only reads its public state.
``run(stop_event, duration_s)`` waits until the event is set, the duration passed or (with the
simulator and no duration) the script ended, logging a status line now and then. ``stop()`` stops
inference, then the sensor threads (which close their drivers), the simulator and the publisher,
joining every thread.

A sensor whose driver cannot even be built (a missing optional package, a bad radar .cfg) is
reported and left out; the model then sees that modality as absent. Host-side durations are divided
by the simulator's speed (``wiring.WindowTiming``).
"""

import logging
import threading
import time
from pathlib import Path
from typing import Any, Dict, Optional, Sequence

from cosmo_edge.config import DaemonConfig
from cosmo_edge.daemon.activity import ActivityTracker
from cosmo_edge.daemon.inference import InferenceLoop
from cosmo_edge.daemon.learning import Learning
from cosmo_edge.daemon.predictor import WindowPredictor, load_predictor
from cosmo_edge.daemon.sensors import SensorThread
from cosmo_edge.daemon.wiring import WindowTiming, log_ring_memory, make_channel, make_cutter
from cosmo_edge.windows import StreamChannel

logger = logging.getLogger(__name__)

READY_TIMEOUT_S = 15.0
STATUS_LOG_PERIOD_S = 10.0
SUPERVISE_PERIOD_S = 0.25
JOIN_TIMEOUT_S = 3.0


def resolve_model_path(path: Path, config_path: Optional[Path]) -> Path:
    """An absolute path as is; a relative one next to the config file if it exists there, else from CWD."""
    path = Path(path)
    if path.is_absolute() or config_path is None:
        return path
    beside = Path(config_path).resolve().parent / path
    return beside if beside.exists() else path


def sensor_rate_hz(sensor: Any, driver: Any) -> float:
    """Nominal sample rate of a sensor (Hz): from the config, or the radar's frame period."""
    if hasattr(sensor, "nominal_rate_hz"):
        return float(sensor.nominal_rate_hz)
    if hasattr(sensor, "fps"):
        return float(sensor.fps)
    return 1.0 / float(driver.frame_period_s)


def timebase_overrides(config: DaemonConfig) -> Dict[str, Any]:
    """``TimebaseConfig`` fields (sensor seconds) from the config's ``timebase`` section."""
    tb = config.timebase
    return {
        "bucket_s": tb.bucket_s,
        "window_s": tb.fit_window_s,
        "min_points": tb.min_points,
        "max_drift_ppm": tb.max_drift_ppm,
        "outlier_k": tb.outlier_k,
        "early_tol_s": tb.early_tol_s,
        "early_n": tb.early_n,
    }


class Daemon:
    """One running cosmo-edge daemon; see the module docstring.

    Args:
        config: the validated config.
        config_path: the config file (a relative model path is looked up beside it first).
        model_path, backend: override ``model.path`` / ``model.backend``.
        frame_cache: ``"auto"``, ``"on"`` or ``"off"`` (``predictor.WindowPredictor``).
        ready_timeout_s: longest wait in ``start`` for every sensor to open (s).
        replay_root, replay_trials: replay these UTD-MHAD trials in the simulator instead of its script.
    """

    def __init__(
        self,
        config: DaemonConfig,
        config_path: Optional[Path] = None,
        model_path: Optional[Path] = None,
        backend: Optional[str] = None,
        frame_cache: str = "auto",
        ready_timeout_s: float = READY_TIMEOUT_S,
        replay_root: Optional[str] = None,
        replay_trials: Sequence[str] = (),
    ) -> None:
        self.config = config
        self.model_path = resolve_model_path(model_path or config.model.path, config_path)
        self.backend_name = backend or config.model.backend
        self.frame_cache = frame_cache
        self.ready_timeout_s = float(ready_timeout_s)
        self.replay = (replay_root, list(replay_trials))
        self.state = "created"
        self.started_ns: Optional[int] = None
        self.predictor: Optional[WindowPredictor] = None
        self.publisher: Optional[Any] = None
        self.simulator: Optional[Any] = None
        self.channels: Dict[str, StreamChannel] = {}
        self.sensors: Dict[str, SensorThread] = {}
        self.failed_sensors: Dict[str, str] = {}
        self.inference: Optional[InferenceLoop] = None
        self.ring_bytes = 0
        self.timing = WindowTiming()
        self.learning = Learning(config)

    # ------------------------------------------------------------------ start

    def start(self) -> None:
        """Bring everything up (see the module docstring); raises when the model or the socket fails."""
        self.started_ns = time.monotonic_ns()
        self.state = "starting"
        cfg = self.config
        state_dir = Path(cfg.state_dir)

        def load(path: Path) -> WindowPredictor:
            return load_predictor(
                path, self.backend_name, cfg.model.threads, state_dir / "models", self.frame_cache
            )

        self.predictor = self.learning.load_serving(self.model_path, load)
        self._start_publisher()
        speed = 1.0
        if cfg.simulator is not None:
            from cosmo_edge.daemon.simulation import SimulatorRunner

            self.simulator = SimulatorRunner(cfg, *self.replay)
            speed = self.simulator.speed
        win = cfg.window
        self.timing = WindowTiming(win.window_s, win.hop_s, win.delay_s, win.stale_s, speed)
        if self.simulator is not None:
            self.simulator.start()
        rates = self._build_sensors()
        self.ring_bytes = log_ring_memory(self.channels)
        cutter = make_cutter(self.predictor.modalities, self.channels, rates, self.timing)
        self.inference = InferenceLoop(
            cutter,
            self.channels,
            self.predictor,
            self.publisher.publish,
            ActivityTracker(),
            recent=self.learning.make_recent(win.hop_s),
        )
        for thread in self.sensors.values():
            thread.start()
        self.inference.start()
        self.learning.start(self.predictor.label_names, load, self.swap_predictor)
        self._wait_sensors_open()

    def swap_predictor(self, predictor: WindowPredictor, version: str) -> None:
        """Serve ``predictor`` (registry ``version``) from the next window on."""
        logger.info("swapping in model %s (%s)", version, predictor.version)
        self.predictor = predictor
        if self.inference is not None:
            self.inference.swap_predictor(predictor)

    def _start_publisher(self) -> None:
        from cosmo_edge.publish import Publisher

        pub = self.config.publish
        curve = pub.curve
        self.publisher = Publisher(
            endpoint=pub.endpoint,
            hwm=pub.hwm,
            queue_size=pub.queue_size,
            status_period_s=pub.status_period_s,
            status_source=self.status,
            curve_secret_key_file=curve.server_secret_key_file if curve else None,
            curve_clients_dir=curve.authorized_clients_dir if curve else None,
        )
        self.publisher.start()

    def _build_sensors(self) -> Dict[str, float]:
        """A driver, channel and thread per usable sensor; returns nominal rates by modality."""
        from drivers.registry import create_driver

        assert self.predictor is not None
        rates: Dict[str, float] = {}
        for sensor in self.config.sensors:
            name = sensor.modality
            if name not in self.predictor.modalities:
                logger.warning(
                    "sensor %s feeds %s, which model %s does not take: not opened",
                    sensor.type,
                    name,
                    self.predictor.version,
                )
                continue
            kwargs = (
                self.simulator.driver_kwargs(sensor) if self.simulator is not None else sensor.driver_kwargs()
            )

            def factory(kind: str = sensor.type, stream: str = name, options: Dict[str, Any] = kwargs) -> Any:
                return create_driver(kind, stream=stream, **options)

            try:
                driver = factory()
            except Exception as exc:  # noqa: BLE001 - a sensor that cannot be built is reported, not fatal
                self.failed_sensors[name] = f"{type(exc).__name__}: {exc}"
                logger.error("sensor %s (%s) cannot be built, left out: %s", name, sensor.type, exc)
                continue
            rates[name] = sensor_rate_hz(sensor, driver)
            self.channels[name] = make_channel(
                name,
                driver.clock,
                rates[name],
                self.timing,
                timebase_overrides(self.config),
                sensor.latency_s,
            )
            self.sensors[name] = SensorThread(name, factory, self.channels[name], first_driver=driver)
        return rates

    def _wait_sensors_open(self) -> None:
        deadline = time.monotonic() + self.ready_timeout_s
        for thread in self.sensors.values():
            thread.opened.wait(max(0.0, deadline - time.monotonic()))
        self.state = "running"
        logger.info("started: %s", self.status_line())

    # ------------------------------------------------------------------ run / stop

    def run(self, stop_event: threading.Event, duration_s: Optional[float] = None) -> str:
        """Wait until stopped; returns why it ended: ``"signal"``, ``"duration"`` or ``"script_end"``."""
        end = None if duration_s is None else time.monotonic() + duration_s
        sim_done_at: Optional[float] = None
        linger_s = self.timing.host_s(self.timing.window_s + self.timing.delay_s + self.timing.hop_s)
        last_log = time.monotonic()
        while not stop_event.wait(SUPERVISE_PERIOD_S):
            now = time.monotonic()
            if end is not None and now >= end:
                return "duration"
            if end is None and self.simulator is not None and self.simulator.finished():
                sim_done_at = sim_done_at or now
                if now - sim_done_at >= linger_s:
                    return "script_end"
            if now - last_log >= STATUS_LOG_PERIOD_S:
                last_log = now
                logger.info("status: %s", self.status_line())
        return "signal"

    def stop(self) -> None:
        """Stop and join everything, in reverse order of data flow; safe to call twice."""
        if self.state == "stopped":
            return
        self.state = "stopping"
        self.learning.stop()
        if self.inference is not None:
            self.inference.stop()
            self.inference.join(JOIN_TIMEOUT_S)
        for thread in self.sensors.values():
            thread.stop()
        for thread in self.sensors.values():
            if thread.is_alive():
                thread.join(JOIN_TIMEOUT_S)
            if thread.is_alive():
                logger.warning("sensor thread %s did not stop within %.1f s", thread.name, JOIN_TIMEOUT_S)
        if self.simulator is not None:
            self.simulator.stop()
        if self.publisher is not None:
            self.publisher.stop()
        self.state = "stopped"
        logger.info("daemon stopped")

    # ------------------------------------------------------------------ status

    def status(self) -> Dict[str, Any]:
        """The daemon's part of every ``status`` message (plain, msgpack-able values)."""
        predictor = self.predictor
        body: Dict[str, Any] = {
            "state": self.state,
            "uptime_s": round((time.monotonic_ns() - (self.started_ns or time.monotonic_ns())) * 1e-9, 3),
            "model_version": predictor.version if predictor else None,
            "backend": predictor.backend.name if predictor else None,
            "labels": predictor.label_names if predictor else [],
            "modalities": predictor.modalities if predictor else [],
            "sensors": {name: thread.counters() for name, thread in self.sensors.items()},
            "sensors_failed": dict(self.failed_sensors),
            "ring_bytes": self.ring_bytes,
            "speed": self.timing.speed,
        }
        if self.inference is not None:
            body["inference"] = self.inference.status()
            body["activity"] = self.inference.tracker.current
        if self.simulator is not None:
            body["simulator"] = self.simulator.counters()
            body["ground_truth"] = str(self.simulator.ground_truth_path)
        body.update(self.learning.status())
        return body

    def status_line(self) -> str:
        """One line for logs and systemd's STATUS=."""
        sensors = ", ".join(f"{n} {t.state}" for n, t in self.sensors.items()) or "no sensors"
        engine = self.predictor.engine if self.predictor else "-"
        windows, p99 = 0, None
        if self.inference is not None:
            windows = self.inference.counters["published"]
            p99 = self.inference.latency.summary()["p99"]
        activity = self.inference.tracker.current if self.inference else None
        return f"{sensors}; {engine}; {windows} windows, p99 {p99} ms; activity {activity}"

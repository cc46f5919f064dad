"""The inference loop: every hop, cut a window, classify it, publish the result and any activity change.

``InferenceLoop`` is a thread. Each time a window is due (its end on the hop grid plus ``delay_s``) it
asks the ``WindowCutter`` for the newest due window (hops missed while busy are skipped and counted by
the cutter), and:

- when no modality of the model is present (sensors still opening, timebases warming up, all
  streams stale) it counts the window as ``windows_empty`` and publishes nothing for it;
- otherwise it runs the ``WindowPredictor``, publishes ``activity.window`` (the ``publish.window_payload``
  fields plus the window's span, when it became due, its newest sample and the reasons for missing
  modalities) and feeds the ``ActivityTracker``, publishing ``activity.change`` when it confirms one.

Every message carries ``model_version``. A window that fails (bad input, backend error) is logged
and counted; the loop goes on. Latency statistics (EMA and rolling p50/p99 of predict time) feed the
``status`` message.
"""

import collections
import logging
import threading
import time
from typing import Any, Deque, Dict, Mapping, Optional

import numpy as np

from cosmo_edge.daemon.activity import ActivityTracker
from cosmo_edge.daemon.predictor import WindowPredictor
from cosmo_edge.daemon.wiring import ring_stamps
from cosmo_edge.publish import TOPIC_CHANGE, TOPIC_WINDOW, change_payload, window_payload
from cosmo_edge.windows import StreamChannel, Window, WindowCutter

logger = logging.getLogger(__name__)

LATENCY_HISTORY = 1000  # predict times kept for the rolling percentiles (windows)
EMA_ALPHA = 0.1


class LatencyStats:
    """Exponential moving average and rolling percentiles of a latency in milliseconds."""

    def __init__(self, history: int = LATENCY_HISTORY) -> None:
        self._values: Deque[float] = collections.deque(maxlen=history)
        self.ema_ms: Optional[float] = None
        self._lock = threading.Lock()

    def add(self, value_ms: float) -> None:
        with self._lock:
            self._values.append(float(value_ms))
            self.ema_ms = (
                value_ms if self.ema_ms is None else self.ema_ms + EMA_ALPHA * (value_ms - self.ema_ms)
            )

    def summary(self) -> Dict[str, Optional[float]]:
        """``ema``, ``p50``, ``p99`` and ``max`` in ms over the recent history (None when empty)."""
        with self._lock:
            values = np.array(self._values)
            ema = self.ema_ms
        if not len(values):
            return {"ema": None, "p50": None, "p99": None, "max": None}
        p50, p99 = np.percentile(values, [50, 99])
        return {
            "ema": round(ema, 3),
            "p50": round(p50, 3),
            "p99": round(p99, 3),
            "max": round(values.max(), 3),
        }


def newest_stamp_ns(window: Window, channels: Mapping[str, StreamChannel]) -> Optional[int]:
    """Host time of the newest sample inside the window over its present modalities (stamps only)."""
    newest: Optional[int] = None
    for modality, present in window.present.items():
        channel = channels.get(modality)
        if not present or channel is None:
            continue
        stamps = ring_stamps(channel.ring, window.t_start_ns, window.t_end_ns)
        if len(stamps) and (newest is None or int(stamps[-1]) > newest):
            newest = int(stamps[-1])
    return newest


class InferenceLoop(threading.Thread):
    """Cut, classify, publish every hop; see the module docstring.

    Args:
        cutter: the window cutter (host-clock geometry already scaled for the simulator's speed).
        channels: the stream channels (frame stamps for the cache, newest-sample stamps).
        predictor: normalisation + backend.
        publish: ``Publisher.publish``-like callable ``(topic, payload) -> seq``.
        tracker: the activity hysteresis.
        recent: where windows with data go for the label server (``labels.RecentWindows``), or None.
    """

    def __init__(
        self,
        cutter: WindowCutter,
        channels: Mapping[str, StreamChannel],
        predictor: WindowPredictor,
        publish: Any,
        tracker: Optional[ActivityTracker] = None,
        recent: Optional[Any] = None,
    ) -> None:
        super().__init__(name="inference", daemon=True)
        self.cutter = cutter
        self.channels = dict(channels)
        self.predictor = predictor
        self.publish = publish
        self.tracker = tracker or ActivityTracker()
        self.recent = recent
        self._next_predictor: Optional[WindowPredictor] = None
        self._swap_lock = threading.Lock()
        self.hop_ns = int(round(cutter.config.hop_s * 1e9))
        self.delay_ns = int(round(cutter.config.delay_s * 1e9))
        self.latency = LatencyStats()
        self.pipeline_latency = LatencyStats()  # due time -> published (ms)
        self.counters: Dict[str, int] = {"windows": 0, "published": 0, "windows_empty": 0, "errors": 0}
        self.last_window: Optional[Dict[str, Any]] = None
        self._stop_event = threading.Event()

    def stop(self) -> None:
        """Ask the loop to finish after the current window."""
        self._stop_event.set()

    def swap_predictor(self, predictor: WindowPredictor) -> None:
        """Serve ``predictor`` from the next window on (taken between two windows, never mid-window)."""
        with self._swap_lock:
            self._next_predictor = predictor

    def run(self) -> None:
        wake_ns = time.monotonic_ns()
        while not self._stop_event.wait(max(0.0, (wake_ns - time.monotonic_ns()) * 1e-9)):
            now_ns = time.monotonic_ns()
            window = self.cutter.poll(now_ns)
            if window is None:
                wake_ns = now_ns + max(1_000_000, self.hop_ns // 10)
                continue
            wake_ns = window.t_end_ns + self.hop_ns + self.delay_ns
            try:
                self.process(window)
            except Exception:  # noqa: BLE001 - one bad window must not stop inference
                self.counters["errors"] += 1
                logger.exception("window %d failed", window.window_id)
        logger.info("inference stopped: %s", self.counters)

    def process(self, window: Window) -> Optional[Dict[str, Any]]:
        """Classify one window and publish it; return the ``activity.window`` payload (None if empty)."""
        self.counters["windows"] += 1
        if self._next_predictor is not None:
            with self._swap_lock:
                self.predictor, self._next_predictor = self._next_predictor or self.predictor, None
            logger.info("now serving model %s", self.predictor.version)
        if not any(window.present.get(m, False) for m in self.predictor.modalities):
            self.counters["windows_empty"] += 1
            return None
        if self.recent is not None:
            self.recent.add(window)
        started = time.perf_counter()
        probs = self.predictor.predict(window, self.channels)
        latency_ms = (time.perf_counter() - started) * 1e3
        self.latency.add(latency_ms)
        version = self.predictor.version
        payload = window_payload(
            window.window_id,
            window.t_end_ns,
            probs,
            self.predictor.label_names,
            version,
            latency_ms,
            {m: window.present.get(m, False) for m in self.predictor.modalities},
        )
        due_ns = window.t_end_ns + self.delay_ns
        payload.update(
            window_start_ns=int(window.t_start_ns),
            due_ns=int(due_ns),
            last_sample_ns=newest_stamp_ns(window, self.channels),
            missing={m: r for m, r in window.reasons.items() if r != "ok"},
            engine=self.predictor.engine,
        )
        self.pipeline_latency.add((time.monotonic_ns() - due_ns) * 1e-6)
        self.publish(TOPIC_WINDOW, payload)
        self.counters["published"] += 1
        self.last_window = payload
        change = self.tracker.update(payload["label"], payload["confidence"])
        if change is not None:
            body = change_payload(
                window.window_id, window.t_end_ns, change.previous, change.label, change.confidence
            )
            body["model_version"] = version
            self.publish(TOPIC_CHANGE, body)
        return payload

    def status(self) -> Dict[str, Any]:
        """The inference part of the ``status`` message."""
        return {
            "counters": dict(self.counters),
            "cutter": dict(self.cutter.counters),
            "latency_ms": self.latency.summary(),
            "pipeline_latency_ms": self.pipeline_latency.summary(),
            "activity": self.tracker.current,
            "activity_confidence": round(self.tracker.current_confidence, 4),
            "engine": self.predictor.engine,
            "cache": self.predictor.cache_counters(),
        }

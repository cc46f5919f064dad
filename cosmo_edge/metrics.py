"""Prometheus metrics of the daemon, on their own ``CollectorRegistry`` (served by ``cosmo_edge.health``).

A private registry (not prometheus_client's global one) keeps tests and several daemons in one process
independent, and keeps library import side effects out of ``/metrics``. All names start with
``cosmo_edge_``; units are in the names (``_seconds``, ``_hz``, ``_ppm``).

The drivers, rings, window cutter, publisher and watchdog already count everything as cumulative
dicts; the ``update_*`` helpers take those snapshots as they are and advance the Prometheus counters
by the difference to the previous snapshot. A snapshot smaller than the previous one means the
source was recreated (a driver restarted), and its value is taken as the increase since then. Call
them from one thread (the daemon's supervision or status loop, e.g. every second); ``observe_*`` and
``finetune_round`` may be called from any thread.

Metric                                            type       labels
cosmo_edge_stream_samples_total                   counter    stream   (driver frames_ok)
cosmo_edge_stream_sample_rate_hz                  gauge      stream   (from samples over >= 1 s)
cosmo_edge_stream_frames_bad_total                counter    stream
cosmo_edge_stream_bytes_skipped_total             counter    stream
cosmo_edge_stream_reconnects_total                counter    stream
cosmo_edge_stream_frames_lost_total               counter    stream   (frame-number gaps: radar, depth)
cosmo_edge_stream_drops_total                     counter    stream   (ring: late + overwritten unread)
cosmo_edge_stream_connected                       gauge      stream   (1/0)
cosmo_edge_clock_offset_seconds                   gauge      stream   (host - device time)
cosmo_edge_clock_drift_ppm                        gauge      stream
cosmo_edge_clock_locked                           gauge      stream   (1/0)
cosmo_edge_clock_resets_total                     counter    stream
cosmo_edge_windows_total                          counter    -
cosmo_edge_windows_skipped_hops_total             counter    -
cosmo_edge_modality_missing_total                 counter    modality, reason
cosmo_edge_inference_latency_seconds              histogram  backend
cosmo_edge_model_info                             info       version, backend, path, ...
cosmo_edge_publish_dropped_total                  counter    -
cosmo_edge_finetune_rounds_total                  counter    outcome
cosmo_edge_finetune_last_duration_seconds         gauge      -
cosmo_edge_labeled_windows                        gauge      activity (windows in the label store)
cosmo_edge_label_requests_total                   counter    outcome  (stored, duplicate, error)
cosmo_edge_watchdog_checks_total / _pings_total / _skipped_total   counter   -
process_*                                         (prometheus_client ProcessCollector: RSS, CPU, fds)
"""

import logging
import time
from typing import Any, Callable, Dict, Mapping, Optional, Set, Tuple

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info, ProcessCollector

logger = logging.getLogger(__name__)

# Inference latency buckets (s): a TX2 model runs in a few ms on the GPU, tens of ms on the CPU.
LATENCY_BUCKETS_S: Tuple[float, ...] = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0)
FINETUNE_OUTCOMES = ("promoted", "rejected", "failed", "rolled_back")
LABEL_OUTCOMES = ("stored", "duplicate", "error")
RATE_MIN_INTERVAL_S = 1.0

# driver counter key -> our counter attribute
_DRIVER_COUNTERS = {
    "frames_ok": "samples",
    "frames_bad": "frames_bad",
    "bytes_skipped": "bytes_skipped",
    "reconnects": "reconnects",
    "frames_lost": "frames_lost",
}


class Metrics:
    """The daemon's metric definitions plus the helpers that keep them current.

    Args:
        registry: where to register (default: a new ``CollectorRegistry``).
        process_metrics: add prometheus_client's ``process_*`` collector (Linux /proc).
        clock: monotonic seconds, for sample rates (tests pass a fake one).
    """

    def __init__(
        self,
        registry: Optional[CollectorRegistry] = None,
        process_metrics: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self._clock = clock
        self._last: Dict[Tuple[int, Tuple[str, ...]], float] = {}
        self._rate_anchor: Dict[str, Tuple[float, float]] = {}
        self._activities: Set[str] = set()
        reg = self.registry
        if process_metrics:
            ProcessCollector(registry=reg)
        stream = ("stream",)
        self.samples = Counter(
            "cosmo_edge_stream_samples", "Samples decoded per stream", stream, registry=reg
        )
        self.sample_rate = Gauge(
            "cosmo_edge_stream_sample_rate_hz", "Decoded samples per second per stream", stream, registry=reg
        )
        self.frames_bad = Counter(
            "cosmo_edge_stream_frames_bad", "Frames or lines rejected by the parser", stream, registry=reg
        )
        self.bytes_skipped = Counter(
            "cosmo_edge_stream_bytes_skipped", "Bytes skipped while resynchronising", stream, registry=reg
        )
        self.reconnects = Counter(
            "cosmo_edge_stream_reconnects", "Device reconnects per stream", stream, registry=reg
        )
        self.frames_lost = Counter(
            "cosmo_edge_stream_frames_lost",
            "Frames the device numbered but the driver never received (gaps in frame numbers)",
            stream,
            registry=reg,
        )
        self.drops = Counter(
            "cosmo_edge_stream_drops",
            "Samples lost in the ring (late or overwritten unread)",
            stream,
            registry=reg,
        )
        self.connected = Gauge(
            "cosmo_edge_stream_connected", "1 while the device is open", stream, registry=reg
        )
        self.clock_offset = Gauge(
            "cosmo_edge_clock_offset_seconds",
            "Host minus device time of the newest sample",
            stream,
            registry=reg,
        )
        self.clock_drift = Gauge(
            "cosmo_edge_clock_drift_ppm", "Fitted device clock drift (ppm)", stream, registry=reg
        )
        self.clock_locked = Gauge(
            "cosmo_edge_clock_locked", "1 while the clock mapping is locked", stream, registry=reg
        )
        self.clock_resets = Counter(
            "cosmo_edge_clock_resets", "Clock mapping resets (device restart or jump)", stream, registry=reg
        )
        self.windows = Counter("cosmo_edge_windows", "Windows cut", registry=reg)
        self.skipped_hops = Counter(
            "cosmo_edge_windows_skipped_hops", "Hops skipped because the loop was late", registry=reg
        )
        self.modality_missing = Counter(
            "cosmo_edge_modality_missing",
            "Windows in which a modality was masked, by reason",
            ("modality", "reason"),
            registry=reg,
        )
        self.inference_latency = Histogram(
            "cosmo_edge_inference_latency_seconds",
            "Backend predict() wall time per window",
            ("backend",),
            buckets=LATENCY_BUCKETS_S,
            registry=reg,
        )
        self.model = Info("cosmo_edge_model", "The model being served", registry=reg)
        self.publish_dropped = Counter(
            "cosmo_edge_publish_dropped", "Messages dropped by the publisher queue", registry=reg
        )
        self.finetune_rounds = Counter(
            "cosmo_edge_finetune_rounds", "Fine-tuning rounds by outcome", ("outcome",), registry=reg
        )
        self.finetune_duration = Gauge(
            "cosmo_edge_finetune_last_duration_seconds",
            "Wall time of the last fine-tuning round",
            registry=reg,
        )
        self.labeled_windows = Gauge(
            "cosmo_edge_labeled_windows", "Labeled windows in the label store", ("activity",), registry=reg
        )
        self.label_requests = Counter(
            "cosmo_edge_label_requests", "Label requests by outcome", ("outcome",), registry=reg
        )
        self.watchdog_checks = Counter("cosmo_edge_watchdog_checks", "Watchdog progress checks", registry=reg)
        self.watchdog_pings = Counter("cosmo_edge_watchdog_pings", "WATCHDOG=1 pings sent", registry=reg)
        self.watchdog_skipped = Counter(
            "cosmo_edge_watchdog_skipped", "Pings withheld because a stage stalled", registry=reg
        )
        for outcome in FINETUNE_OUTCOMES:
            self.finetune_rounds.labels(outcome)
        for outcome in LABEL_OUTCOMES:
            self.label_requests.labels(outcome)

    # ------------------------------------------------------------ cumulative snapshots

    def _advance(self, counter: Any, labels: Tuple[str, ...], value: float) -> float:
        """Increase ``counter{labels}`` to follow a cumulative ``value``; returns the increase."""
        key = (id(counter), labels)
        previous = self._last.get(key, 0.0)
        value = float(value)
        increase = value - previous if value >= previous else value  # smaller: the source restarted
        self._last[key] = value
        child = counter.labels(*labels) if labels else counter  # created at 0 on first sight
        if increase > 0:
            child.inc(increase)
        return increase

    def update_driver(
        self, stream: str, counters: Mapping[str, int], connected: Optional[bool] = None
    ) -> None:
        """Follow a driver's ``counters`` dict; updates the sample rate once >= 1 s has passed."""
        for key, attr in _DRIVER_COUNTERS.items():
            if key in counters:
                self._advance(getattr(self, attr), (stream,), counters[key])
        if connected is not None:
            self.connected.labels(stream).set(1.0 if connected else 0.0)
        if "frames_ok" in counters:
            self._update_rate(stream, float(counters["frames_ok"]))

    def _update_rate(self, stream: str, total: float) -> None:
        now = self._clock()
        anchor = self._rate_anchor.get(stream)
        if anchor is None or total < anchor[1]:
            self._rate_anchor[stream] = (now, total)
            return
        elapsed_s = now - anchor[0]
        if elapsed_s >= RATE_MIN_INTERVAL_S:
            self.sample_rate.labels(stream).set((total - anchor[1]) / elapsed_s)
            self._rate_anchor[stream] = (now, total)

    def update_ring(self, stream: str, drops: int) -> None:
        """Follow ``Ring.drops`` (cumulative) of the stream's ring."""
        self._advance(self.drops, (stream,), drops)

    def update_clock(
        self,
        stream: str,
        drift_ppm: float,
        offset_s: Optional[float] = None,
        locked: Optional[bool] = None,
        resets: Optional[int] = None,
    ) -> None:
        """Clock mapping of one stream: ``StreamTimebase.drift_ppm``, ``state == "locked"``,
        ``counters["resets"]``, and the host-minus-device offset of the newest sample (s)."""
        self.clock_drift.labels(stream).set(float(drift_ppm))
        if offset_s is not None:
            self.clock_offset.labels(stream).set(float(offset_s))
        if locked is not None:
            self.clock_locked.labels(stream).set(1.0 if locked else 0.0)
        if resets is not None:
            self._advance(self.clock_resets, (stream,), resets)

    def update_windows(self, counters: Mapping[str, int]) -> None:
        """Follow ``WindowCutter.counters`` (``windows``, ``skipped_hops``)."""
        if "windows" in counters:
            self._advance(self.windows, (), counters["windows"])
        if "skipped_hops" in counters:
            self._advance(self.skipped_hops, (), counters["skipped_hops"])

    def update_publisher(self, counters: Mapping[str, int]) -> None:
        """Follow ``Publisher.counters()`` (``dropped``)."""
        if "dropped" in counters:
            self._advance(self.publish_dropped, (), counters["dropped"])

    def update_watchdog(self, counters: Mapping[str, int]) -> None:
        """Follow ``Watchdog.counters`` (``checks``, ``pings``, ``skipped``)."""
        for key, counter in (
            ("checks", self.watchdog_checks),
            ("pings", self.watchdog_pings),
            ("skipped", self.watchdog_skipped),
        ):
            if key in counters:
                self._advance(counter, (), counters[key])

    def update_label_server(self, counters: Mapping[str, int]) -> None:
        """Follow ``LabelServer.counters`` (requests, stored_windows, duplicates, errors)."""
        requests = counters.get("requests", 0)
        duplicates = counters.get("duplicates", 0)
        errors = counters.get("errors", 0)
        self._advance(self.label_requests, ("stored",), max(0, requests - duplicates - errors))
        self._advance(self.label_requests, ("duplicate",), duplicates)
        self._advance(self.label_requests, ("error",), errors)

    # ------------------------------------------------------------ events and states

    def observe_window(self, reasons: Mapping[str, str]) -> None:
        """Count the masked modalities of one window (``Window.reasons``; "ok" is not counted)."""
        for modality, reason in reasons.items():
            if reason != "ok":
                self.modality_missing.labels(modality, reason).inc()

    def observe_inference(self, latency_s: float, backend: str) -> None:
        """One ``predict`` call took ``latency_s`` seconds on ``backend``."""
        self.inference_latency.labels(backend).observe(float(latency_s))

    def set_model(self, version: str, backend: str, **details: Any) -> None:
        """The model now served (after start or a promotion); ``details`` become more info labels."""
        info = {"version": str(version), "backend": str(backend)}
        info.update({str(k): str(v) for k, v in details.items()})
        self.model.info(info)

    def finetune_round(self, outcome: str, duration_s: Optional[float] = None) -> None:
        """One fine-tuning round ended with ``outcome`` (one of ``FINETUNE_OUTCOMES``)."""
        if outcome not in FINETUNE_OUTCOMES:
            raise ValueError(f"unknown fine-tuning outcome {outcome!r}; expected one of {FINETUNE_OUTCOMES}")
        self.finetune_rounds.labels(outcome).inc()
        if duration_s is not None:
            self.finetune_duration.set(float(duration_s))

    def set_label_counts(self, counts: Mapping[str, int]) -> None:
        """Labeled windows per activity in the store; activities no longer present drop to 0."""
        for activity in self._activities - set(counts):
            self.labeled_windows.labels(activity).set(0.0)
        for activity, count in counts.items():
            self.labeled_windows.labels(activity).set(float(count))
        self._activities |= set(counts)

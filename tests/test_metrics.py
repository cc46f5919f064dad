"""Metric definitions and the helpers that follow the pipeline's cumulative counters."""

import pytest
from prometheus_client import REGISTRY, CollectorRegistry

from cosmo_edge.metrics import FINETUNE_OUTCOMES, Metrics


class FakeClock:
    def __init__(self) -> None:
        self.now_s = 0.0

    def __call__(self) -> float:
        return self.now_s


def value(metrics: Metrics, name: str, **labels: str) -> float:
    result = metrics.registry.get_sample_value(name, labels)
    assert result is not None, f"{name}{labels} not exported"
    return result


def test_private_registry_leaves_the_global_one_alone() -> None:
    first, second = Metrics(process_metrics=False), Metrics(process_metrics=False)  # no duplicate error
    first.observe_inference(0.01, "torch")
    assert (
        second.registry.get_sample_value("cosmo_edge_inference_latency_seconds_count", {"backend": "torch"})
        is None
    )
    assert REGISTRY.get_sample_value("cosmo_edge_windows_total") is None
    assert isinstance(first.registry, CollectorRegistry)


def test_driver_snapshots_become_counter_increases_and_survive_a_restart() -> None:
    metrics = Metrics(process_metrics=False)
    metrics.update_driver("radar", {"frames_ok": 10, "frames_bad": 1, "bytes_skipped": 40, "reconnects": 0})
    metrics.update_driver("radar", {"frames_ok": 25, "frames_bad": 1, "bytes_skipped": 40, "reconnects": 1})
    assert value(metrics, "cosmo_edge_stream_samples_total", stream="radar") == 25
    assert value(metrics, "cosmo_edge_stream_reconnects_total", stream="radar") == 1
    # The driver was recreated: its counters restart from 0; nothing is subtracted.
    metrics.update_driver("radar", {"frames_ok": 5, "frames_bad": 0, "bytes_skipped": 0, "reconnects": 0})
    assert value(metrics, "cosmo_edge_stream_samples_total", stream="radar") == 30
    assert value(metrics, "cosmo_edge_stream_frames_bad_total", stream="radar") == 1
    assert value(metrics, "cosmo_edge_stream_bytes_skipped_total", stream="radar") == 40


def test_sample_rate_over_at_least_one_second() -> None:
    clock = FakeClock()
    metrics = Metrics(process_metrics=False, clock=clock)
    metrics.update_driver("imu", {"frames_ok": 0}, connected=True)
    clock.now_s = 0.5
    metrics.update_driver("imu", {"frames_ok": 50})
    assert metrics.registry.get_sample_value("cosmo_edge_stream_sample_rate_hz", {"stream": "imu"}) is None
    clock.now_s = 2.0
    metrics.update_driver("imu", {"frames_ok": 200}, connected=False)
    assert value(metrics, "cosmo_edge_stream_sample_rate_hz", stream="imu") == pytest.approx(100.0)
    assert value(metrics, "cosmo_edge_stream_connected", stream="imu") == 0.0
    clock.now_s = 4.0
    metrics.update_driver("imu", {"frames_ok": 200})  # silent sensor
    assert value(metrics, "cosmo_edge_stream_sample_rate_hz", stream="imu") == 0.0


def test_clock_ring_windows_publisher_watchdog_and_labels() -> None:
    metrics = Metrics(process_metrics=False)
    metrics.update_clock("imu", drift_ppm=-35.5, offset_s=0.0123, locked=True, resets=2)
    metrics.update_ring("imu", 7)
    metrics.update_windows({"windows": 40, "skipped_hops": 3})
    metrics.observe_window({"imu": "ok", "radar": "stale", "depth": "absent"})
    metrics.update_publisher({"dropped": 4, "sent": 100})
    metrics.update_watchdog({"checks": 10, "pings": 9, "skipped": 1})
    metrics.update_label_server({"requests": 10, "stored_windows": 30, "duplicates": 2, "errors": 3})
    assert value(metrics, "cosmo_edge_clock_drift_ppm", stream="imu") == -35.5
    assert value(metrics, "cosmo_edge_clock_offset_seconds", stream="imu") == pytest.approx(0.0123)
    assert value(metrics, "cosmo_edge_clock_locked", stream="imu") == 1.0
    assert value(metrics, "cosmo_edge_clock_resets_total", stream="imu") == 2
    assert value(metrics, "cosmo_edge_stream_drops_total", stream="imu") == 7
    assert value(metrics, "cosmo_edge_windows_total") == 40
    assert value(metrics, "cosmo_edge_windows_skipped_hops_total") == 3
    assert value(metrics, "cosmo_edge_modality_missing_total", modality="radar", reason="stale") == 1
    assert (
        metrics.registry.get_sample_value(
            "cosmo_edge_modality_missing_total", {"modality": "imu", "reason": "ok"}
        )
        is None
    )
    assert value(metrics, "cosmo_edge_publish_dropped_total") == 4
    assert value(metrics, "cosmo_edge_watchdog_skipped_total") == 1
    assert value(metrics, "cosmo_edge_label_requests_total", outcome="stored") == 5
    assert value(metrics, "cosmo_edge_label_requests_total", outcome="error") == 3


def test_finetune_outcomes_and_label_counts() -> None:
    metrics = Metrics(process_metrics=False)
    for outcome in FINETUNE_OUTCOMES:  # every outcome is exported from the start
        assert value(metrics, "cosmo_edge_finetune_rounds_total", outcome=outcome) == 0
    metrics.finetune_round("promoted", duration_s=42.0)
    metrics.finetune_round("rejected")
    assert value(metrics, "cosmo_edge_finetune_rounds_total", outcome="promoted") == 1
    assert value(metrics, "cosmo_edge_finetune_last_duration_seconds") == 42.0
    with pytest.raises(ValueError, match="unknown fine-tuning outcome"):
        metrics.finetune_round("exploded")

    metrics.set_label_counts({"walk": 12, "sit": 3})
    metrics.set_label_counts({"walk": 14})  # "sit" was pruned from the store
    assert value(metrics, "cosmo_edge_labeled_windows", activity="walk") == 14
    assert value(metrics, "cosmo_edge_labeled_windows", activity="sit") == 0


def test_process_collector_is_optional() -> None:
    with_process = Metrics()
    assert with_process.registry.get_sample_value("process_resident_memory_bytes") > 0
    assert Metrics(process_metrics=False).registry.get_sample_value("process_resident_memory_bytes") is None

"""measure_latency on a fake clock (exact percentiles) and on a real callable (counts, memory, CPU)."""

import numpy as np
import pytest

from cosmo_edge.bench.latency import measure_latency, peak_rss_bytes


class FakeClock:
    """A clock that only moves when the fake predict says so."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_percentiles_throughput_and_call_counts_on_a_fake_clock() -> None:
    clock = FakeClock()
    calls = []

    def predict(batch) -> None:
        calls.append(batch)
        clock.now += len(calls) * 1e-3  # call k takes k ms (warm-up calls included)

    result = measure_latency(
        predict, "b", batch_size=4, duration_s=1e9, max_iterations=100, warmup=3, clock=clock
    )
    summary = result.summary()
    assert len(calls) == 103 and result.iterations == 100
    ms = np.arange(4, 104, dtype=float)  # the timed calls took 4..103 ms
    assert summary["p50_ms"] == pytest.approx(np.percentile(ms, 50))
    assert summary["p99_ms"] == pytest.approx(np.percentile(ms, 99))
    assert summary["max_ms"] == pytest.approx(103.0)
    assert summary["throughput_per_s"] == pytest.approx(400 / (ms.sum() / 1e3))
    assert (
        summary["p50_ms"] <= summary["p90_ms"] <= summary["p95_ms"] <= summary["p99_ms"] <= summary["max_ms"]
    )


def test_duration_stops_the_loop_but_not_before_min_iterations() -> None:
    clock = FakeClock()

    def predict(batch) -> None:
        clock.now += 0.5

    result = measure_latency(predict, None, duration_s=1.0, warmup=0, min_iterations=10, clock=clock)
    assert result.iterations == 10  # 1 s passed after 2 calls, yet 10 are the minimum


def test_real_callable_reports_window_memory_and_cpu() -> None:
    progress = []
    data = np.random.default_rng(0).standard_normal((64, 64))
    result = measure_latency(
        lambda x: x @ x, data, duration_s=0.05, warmup=1, progress=lambda s, n: progress.append(n)
    )
    summary = result.summary()
    assert result.t_end_ns > result.t_start_ns
    assert summary["peak_rss_mb"] > 0
    assert summary["cpu_cores_busy"] >= 0
    assert progress and progress[-1] == result.iterations
    rss, source = peak_rss_bytes()
    assert rss > 0 and source

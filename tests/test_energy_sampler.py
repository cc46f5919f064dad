"""The fixed-period sampler: it collects samples, covers a workload window, and reports meter failure."""

import time
from typing import List

import numpy as np
import pytest

from cosmo_edge.energy import (
    POWER,
    EnergyMeter,
    MeterError,
    MeterOptions,
    MeterSample,
    Sampler,
    SamplerError,
    probe_meter,
    window_energy,
)
from cosmo_edge.energy.fake_sysfs import write_tx2


class CountingMeter(EnergyMeter):
    """A power meter whose value is the poll count; fails after ``fail_after`` polls if given."""

    name = "counting"
    quantity = POWER

    def __init__(self, fail_after: int = -1) -> None:
        super().__init__()
        self.polls = 0
        self.fail_after = fail_after
        self.total_channel = "x"

    @classmethod
    def probe(cls, options: MeterOptions) -> "CountingMeter":
        return cls()

    def channels(self) -> List:
        return []

    def poll(self) -> List[MeterSample]:
        if self.polls == self.fail_after:
            raise MeterError("sensor unplugged")
        self.polls += 1
        return [MeterSample(time.monotonic_ns(), {"x": float(self.polls)})]


def test_sampler_records_increasing_samples_and_covers_the_window() -> None:
    meter = CountingMeter()
    with Sampler(meter, period_s=0.01) as sampler:
        t0 = time.monotonic_ns()
        time.sleep(0.15)
        t1 = time.monotonic_ns()
        sampler.wait_past(t1)
    trace = sampler.trace()
    assert trace.t_s[0] <= t0 / 1e9 and trace.t_s[-1] > t1 / 1e9
    assert np.all(np.diff(trace.t_s) > 0)
    assert np.array_equal(trace.values["x"], np.arange(1, trace.t_s.size + 1))  # none dropped
    assert trace.t_s.size >= 3
    assert sampler.stats()["samples"] == trace.t_s.size


def test_meter_failure_is_reported_not_swallowed() -> None:
    sampler = Sampler(CountingMeter(fail_after=2), period_s=0.005).start()
    try:
        with pytest.raises(SamplerError, match="sensor unplugged"):
            sampler.wait_past(time.monotonic_ns() + 10**9, timeout_s=5.0)
    finally:
        sampler.stop()
    assert isinstance(sampler.error, MeterError)


def test_constant_ina3221_power_integrates_to_power_times_time(tmp_path) -> None:
    write_tx2(tmp_path)  # VDD_IN 1649 mW
    meter = probe_meter("jetson_ina3221", MeterOptions(sysfs_root=str(tmp_path)))
    with meter, Sampler(meter, period_s=0.01) as sampler:
        t0 = time.monotonic_ns()
        time.sleep(0.1)
        t1 = time.monotonic_ns()
        sampler.wait_past(t1)
    result = window_energy(sampler.trace(), "VDD_IN", t0 / 1e9, t1 / 1e9)
    assert result.energy_j == pytest.approx(1.649 * (t1 - t0) / 1e9, rel=1e-9)
    assert result.samples >= 2


def test_rejects_a_non_positive_period() -> None:
    with pytest.raises(ValueError):
        Sampler(CountingMeter(), period_s=0.0)


def test_meter_without_counters_starts_no_thread_and_yields_an_empty_trace() -> None:
    from cosmo_edge.energy.none import NoneMeter

    with Sampler(NoneMeter("no counters here"), period_s=0.01) as sampler:
        sampler.wait_past(time.monotonic_ns())  # nothing to wait for
    assert sampler._thread is None
    assert sampler.trace().t_s.size == 0

"""Integration arithmetic: trapezoid on known power curves, window clipping, counters, idle, gaps."""

import numpy as np
import pytest

from cosmo_edge.energy import (
    ENERGY,
    POWER,
    Trace,
    achieved_rate_hz,
    find_gaps,
    per_inference,
    trapezoid_energy_j,
)
from cosmo_edge.energy.integrate import idle_power_w, window_energy


def _power_trace(t, p, period=0.02) -> Trace:
    return Trace("test", POWER, np.asarray(t), {"VDD_IN": np.asarray(p)}, period, "VDD_IN")


def test_trapezoid_constant_and_linear_power_are_exact() -> None:
    t = np.linspace(0.0, 10.0, 501)
    assert trapezoid_energy_j(t, np.full_like(t, 3.0)) == pytest.approx(30.0)
    # P = 2 + 0.5 t over [0, 10] -> 2 * 10 + 0.25 * 100 = 45 J, exact for a trapezoid.
    assert trapezoid_energy_j(t, 2.0 + 0.5 * t) == pytest.approx(45.0, rel=1e-12)


def test_trapezoid_on_a_parabola_has_the_known_error() -> None:
    dt, length = 0.1, 2.0
    t = np.arange(0.0, length + dt / 2, dt)
    # Exact integral of t^2 is L^3/3; the trapezoid overestimates it by L dt^2 / 6.
    assert trapezoid_energy_j(t, t**2) == pytest.approx(length**3 / 3 + length * dt**2 / 6, rel=1e-12)


def test_window_ends_are_interpolated_between_samples() -> None:
    t = np.arange(0.0, 10.01, 0.5)
    trace = _power_trace(t, 1.0 + t)  # linear: interpolation and trapezoid are exact
    w = window_energy(trace, "VDD_IN", 2.25, 7.1)
    expected = (7.1 - 2.25) + (7.1**2 - 2.25**2) / 2
    assert w.energy_j == pytest.approx(expected, rel=1e-12)
    assert w.mean_power_w == pytest.approx(expected / (7.1 - 2.25))


def test_counter_window_is_an_interpolated_difference() -> None:
    t = np.arange(0.0, 5.01, 0.5)
    trace = Trace("rapl", ENERGY, t, {"package-0": 2.0 * t}, 0.5, "package-0")  # 2 W
    w = window_energy(trace, "package-0", 1.25, 3.75)
    assert w.energy_j == pytest.approx(5.0)
    assert w.mean_power_w == pytest.approx(2.0)


def test_idle_subtraction_per_inference() -> None:
    t = np.arange(0.0, 20.001, 0.02)
    p = np.where(t < 10.0, 2.0, 5.0)
    trace = _power_trace(t, p)
    idle = idle_power_w(trace, 0.0, 9.9)
    assert idle["VDD_IN"].mean_power_w == pytest.approx(2.0)
    result = per_inference(window_energy(trace, "VDD_IN", 10.1, 20.0), 100, idle["VDD_IN"].mean_power_w)
    assert result["gross_j_per_inference"] == pytest.approx(5.0 * 9.9 / 100)
    assert result["net_j_per_inference"] == pytest.approx(3.0 * 9.9 / 100)


def test_missing_baseline_gives_no_net_value() -> None:
    trace = _power_trace([0.0, 1.0, 2.0], [1.0, 1.0, 1.0], period=1.0)
    result = per_inference(window_energy(trace, "VDD_IN", 0.0, 2.0), 4, None)
    assert result["gross_j_per_inference"] == pytest.approx(0.5)
    assert result["net_j_per_inference"] is None


def test_gap_longer_than_five_periods_is_reported_shorter_is_not() -> None:
    period = 0.02
    t = np.concatenate([np.arange(0, 1.0, period), np.arange(1.04, 2.0, period), np.arange(2.2, 3.0, period)])
    gaps = find_gaps(t, period)
    assert len(gaps) == 1  # a 3-period hole is not a gap; the 0.22 s one is
    start, length = gaps[0]
    assert start == pytest.approx(t[t < 2.2][-1])
    assert length == pytest.approx(2.2 - start)
    w = window_energy(_power_trace(t, np.ones_like(t), period), "VDD_IN", 0.5, 2.9)
    assert len(w.gaps) == 1
    assert w.gaps[0][0] == pytest.approx(start - 0.5)


def test_window_outside_the_trace_is_not_extrapolated() -> None:
    trace = _power_trace([1.0, 2.0, 3.0], [1.0, 1.0, 1.0], period=1.0)
    w = window_energy(trace, "VDD_IN", 0.5, 2.5)
    assert w.energy_j is None
    assert "not extrapolated" in w.reason
    assert per_inference(w, 10, 1.0)["gross_j_per_inference"] is None


def test_achieved_rate_and_trace_validation() -> None:
    assert achieved_rate_hz(np.arange(0, 1.0001, 0.01)) == pytest.approx(100.0)
    assert achieved_rate_hz([1.0]) is None
    with pytest.raises(ValueError, match="increase"):
        _power_trace([0.0, 1.0, 1.0], [1.0, 1.0, 1.0])
    with pytest.raises(KeyError):
        window_energy(_power_trace([0.0, 1.0], [1.0, 1.0]), "VDD_GPU", 0.0, 1.0)

"""Energy meters (Jetson INA3221, tegrastats, Intel RAPL, none), a fixed-period sampler and integration.

See platform.md section 8. ``probe_meter("auto")`` picks the first meter that works here; a
``Sampler`` records a ``Trace`` from it; ``window_energy`` and ``per_inference`` turn a trace into
joules, with the idle baseline subtracted. Meter modules are imported lazily by the registry.
"""

from cosmo_edge.energy.base import (
    ENERGY,
    METER_ORDER,
    POWER,
    ChannelInfo,
    EnergyMeter,
    MeterError,
    MeterOptions,
    MeterSample,
    MeterUnavailable,
    probe_meter,
)
from cosmo_edge.energy.integrate import (
    Trace,
    WindowEnergy,
    achieved_rate_hz,
    find_gaps,
    idle_power_w,
    per_inference,
    trapezoid_energy_j,
    window_energy,
)
from cosmo_edge.energy.sampler import Sampler, SamplerError

__all__ = [
    "ENERGY",
    "METER_ORDER",
    "POWER",
    "ChannelInfo",
    "EnergyMeter",
    "MeterError",
    "MeterOptions",
    "MeterSample",
    "MeterUnavailable",
    "Sampler",
    "SamplerError",
    "Trace",
    "WindowEnergy",
    "achieved_rate_hz",
    "find_gaps",
    "idle_power_w",
    "per_inference",
    "probe_meter",
    "trapezoid_energy_j",
    "window_energy",
]

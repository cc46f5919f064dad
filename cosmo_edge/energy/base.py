"""The energy-meter interface and the probing registry (platform.md section 8).

A meter reads one physical counter family and hands out ``MeterSample`` records stamped on the host's
monotonic clock. Two kinds exist:

- ``quantity == "power_w"``: each sample holds instantaneous power per channel in watts (INA3221 rails,
  tegrastats); energy is the trapezoid integral of the samples (``cosmo_edge.energy.integrate``);
- ``quantity == "energy_j"``: each sample holds a cumulative energy per channel in joules, already
  unwrapped across counter wraparound (RAPL); energy is a difference of two readings.

``poll()`` returns the samples that became available since the last call: one fresh reading for a
sysfs meter, every line printed since the last poll for a streaming one. A meter that cannot measure
anything is the ``none`` meter: ``available`` is False and ``reason`` says why; it never produces a
number.

``probe_meter("auto", options)`` tries ``METER_ORDER`` (``jetson_ina3221``, ``tegrastats``, ``rapl``,
``none``), logs why each candidate was taken or skipped, and returns the first that works. Meter
modules are imported only when asked about.
"""

import abc
import importlib
import logging
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple, Type

logger = logging.getLogger(__name__)

POWER = "power_w"
ENERGY = "energy_j"
METER_ORDER: Tuple[str, ...] = ("jetson_ina3221", "tegrastats", "rapl", "none")
METER_CLASSES: Dict[str, str] = {
    "jetson_ina3221": "cosmo_edge.energy.ina3221:Ina3221Meter",
    "tegrastats": "cosmo_edge.energy.tegrastats:TegrastatsMeter",
    "rapl": "cosmo_edge.energy.rapl:RaplMeter",
    "none": "cosmo_edge.energy.none:NoneMeter",
}


class MeterError(RuntimeError):
    """A meter failed while reading (a file vanished, a process died)."""


class MeterUnavailable(MeterError):
    """A meter cannot run on this machine; the message says why (missing files, permissions)."""


@dataclass
class MeterOptions:
    """Where and how meters look for their counters.

    Attributes:
        sysfs_root: filesystem root that ``sys/...`` paths are resolved under ("/" on a real machine,
            a fixture tree in tests).
        tegrastats_cmd: the tegrastats executable (name on PATH or a path).
        tegrastats_interval_ms: tegrastats' own print interval in milliseconds.
        probe_timeout_s: how long probing waits for tegrastats' first line, in seconds.
    """

    sysfs_root: str = "/"
    tegrastats_cmd: str = "tegrastats"
    tegrastats_interval_ms: int = 100
    probe_timeout_s: float = 3.0


@dataclass
class MeterSample:
    """One reading: ``t_ns`` on ``time.monotonic_ns()``; ``values`` per channel in the meter's quantity."""

    t_ns: int
    values: Dict[str, float]


@dataclass
class ChannelInfo:
    """A channel (rail or RAPL domain) and where its numbers come from."""

    name: str
    source: str
    unit_read: str = ""
    extra: Dict[str, Any] = field(default_factory=dict)


class EnergyMeter(abc.ABC):
    """Base class of every meter; see the module docstring."""

    name = ""
    quantity = POWER
    available = True

    def __init__(self) -> None:
        self.reason = ""
        self.total_channel: Optional[str] = None
        self.total_source = ""

    @classmethod
    @abc.abstractmethod
    def probe(cls, options: MeterOptions) -> "EnergyMeter":
        """Return a ready meter, or raise ``MeterUnavailable`` saying why it cannot run here."""

    @abc.abstractmethod
    def channels(self) -> List[ChannelInfo]:
        """The channels every sample carries (the total channel included)."""

    @abc.abstractmethod
    def poll(self) -> List[MeterSample]:
        """Samples available since the last call (see the module docstring)."""

    def sample_period_s(self, poll_period_s: float) -> float:
        """Nominal spacing of the samples when polled every ``poll_period_s`` seconds."""
        return poll_period_s

    def close(self) -> None:
        """Release files and processes; the default has nothing to release."""
        return None

    def describe(self) -> Dict[str, Any]:
        """JSON-able description for results: name, availability, quantity, channels, total."""
        info: Dict[str, Any] = {"meter": self.name, "available": self.available}
        if not self.available:
            info["reason"] = self.reason
            return info
        info.update(
            {
                "quantity": self.quantity,
                "total_channel": self.total_channel,
                "total_source": self.total_source,
                "channels": [
                    {"name": c.name, "source": c.source, "unit_read": c.unit_read, **c.extra}
                    for c in self.channels()
                ],
            }
        )
        return info

    def __enter__(self) -> "EnergyMeter":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()


def meter_class(name: str) -> Type[EnergyMeter]:
    """Import and return the meter class registered as ``name``."""
    try:
        target = METER_CLASSES[name]
    except KeyError:
        raise MeterError(f"unknown meter {name!r}; choose one of {list(METER_ORDER)} or 'auto'") from None
    module_name, class_name = target.split(":")
    return getattr(importlib.import_module(module_name), class_name)


def probe_meter(name: str = "auto", options: Optional[MeterOptions] = None) -> EnergyMeter:
    """Return meter ``name``, or for ``auto`` the first of ``METER_ORDER`` that works here.

    A named meter that cannot run raises ``MeterUnavailable``. ``auto`` never raises: when no counter
    exists it returns the ``none`` meter, whose ``reason`` lists why each candidate was skipped.
    """
    options = options or MeterOptions()
    if name != "auto":
        meter = meter_class(name).probe(options)
        logger.info("energy meter %s chosen", name)
        return meter
    skipped: List[str] = []
    for candidate in METER_ORDER:
        if candidate == "none":
            break
        try:
            meter = meter_class(candidate).probe(options)
        except MeterUnavailable as exc:
            skipped.append(f"{candidate}: {exc}")
            logger.info("energy meter auto: skipping %s (%s)", candidate, exc)
            continue
        logger.info(
            "energy meter auto: chose %s%s", candidate, "; skipped " + "; ".join(skipped) if skipped else ""
        )
        return meter
    from cosmo_edge.energy.none import NoneMeter

    meter = NoneMeter("no energy counter readable: " + "; ".join(skipped))
    logger.warning("energy meter auto: %s", meter.reason)
    return meter

"""Intel RAPL energy counters from the powercap sysfs class (platform.md section 8).

``sys/class/powercap/intel-rapl:N/energy_uj`` is a cumulative microjoule counter that wraps at
``max_energy_range_uj``; zones ``intel-rapl:N`` and subzones ``intel-rapl:N:M`` are identified by their
``name`` file (``package-0``, ``core``, ``uncore``, ``dram``, ``psys``), never by index. A subzone's
channel is ``parent/name`` (``package-0/dram``).

Energy is a difference of readings: when a reading is smaller than the previous one the counter has
wrapped, and ``max_energy_range_uj`` is added (``unwrap_delta_uj``). That undoes exactly one wrap, so
the counter must be read at least once per wrap period (range / peak power; the sampler's 10-50 Hz
is far inside it). Samples carry the unwrapped cumulative energy in joules since the meter opened.

The total is ``psys`` (the whole platform) where it exists, else a derived ``total`` = every
``package-*`` zone plus every ``dram`` domain (DRAM is not inside the package counter).

Since Linux 5.10 ``energy_uj`` is readable by root only (CVE-2020-8694); the probe then says so.
Grant a group read access with a udev rule rather than running as root.
"""

import logging
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional

from cosmo_edge.energy.base import (
    ENERGY,
    ChannelInfo,
    EnergyMeter,
    MeterError,
    MeterOptions,
    MeterSample,
    MeterUnavailable,
)
from cosmo_edge.energy.sysfs import SysfsValue, read_int, read_text, sys_path

logger = logging.getLogger(__name__)

POWERCAP = ("sys", "class", "powercap")
ZONE_NAME = re.compile(r"^intel-rapl(:\d+){1,2}$")
DERIVED_TOTAL = "total"
ROOT_ONLY_HINT = (
    "energy_uj is root-only since Linux 5.10 (CVE-2020-8694); grant the service's group read access "
    "with a udev rule"
)


def unwrap_delta_uj(previous_uj: int, current_uj: int, max_range_uj: int) -> int:
    """Energy in µJ between two readings of a counter that wraps at ``max_range_uj`` (at most one wrap)."""
    delta = int(current_uj) - int(previous_uj)
    if delta < 0:
        delta += int(max_range_uj)
    return delta


@dataclass
class RaplDomain:
    """One RAPL zone or subzone: its channel name, counter file and wrap range."""

    channel: str
    zone: str
    energy_file: Path
    max_range_uj: int


def discover_domains(sysfs_root: str = "/") -> List[RaplDomain]:
    """Every ``intel-rapl:*`` zone and subzone under ``sysfs_root``, parents before children.

    Raises ``MeterUnavailable`` when the powercap class is absent.
    """
    powercap = sys_path(sysfs_root, *POWERCAP)
    if not powercap.is_dir():
        raise MeterUnavailable(f"no {powercap} (no RAPL driver; usual in virtual machines)")
    zones = [p for p in powercap.glob("intel-rapl:*") if ZONE_NAME.match(p.name)]
    zones.sort(key=lambda p: [int(v) for v in p.name.split(":")[1:]])
    names: Dict[str, str] = {}
    domains: List[RaplDomain] = []
    for zone in zones:
        try:
            name = read_text(zone / "name")
            max_range_uj = read_int(zone / "max_energy_range_uj")
        except (OSError, ValueError) as exc:
            logger.info("RAPL zone %s skipped: %s", zone.name, exc)
            continue
        names[zone.name] = name
        parent = zone.name.rsplit(":", 1)[0] if zone.name.count(":") == 2 else None
        channel = f"{names.get(parent, parent)}/{name}" if parent else name
        domains.append(RaplDomain(channel, zone.name, zone / "energy_uj", max_range_uj))
    if not domains:
        raise MeterUnavailable(f"no readable intel-rapl zone under {powercap}")
    return domains


class RaplMeter(EnergyMeter):
    """Cumulative energy per RAPL domain in joules, unwrapped, relative to the first reading."""

    name = "rapl"
    quantity = ENERGY

    def __init__(self, domains: List[RaplDomain]) -> None:
        super().__init__()
        self.domains = domains
        self._files: List[SysfsValue] = []
        try:
            for domain in domains:
                self._files.append(SysfsValue(domain.energy_file))
            first = [handle.read() for handle in self._files]
        except PermissionError as exc:
            self.close()
            raise MeterUnavailable(f"{exc.filename or exc}: permission denied; {ROOT_ONLY_HINT}") from exc
        except (OSError, ValueError) as exc:
            self.close()
            raise MeterUnavailable(f"cannot read RAPL counters: {exc}") from exc
        self._last_uj: List[int] = first
        self._total_uj: List[int] = [0] * len(domains)
        channels = [d.channel for d in domains]
        if "psys" in channels:
            self.total_channel = "psys"
            self.total_source = "psys zone (platform)"
            self._total_parts: List[int] = []
        else:
            self._total_parts = [
                i
                for i, d in enumerate(domains)
                if (d.zone.count(":") == 1 and d.channel.startswith("package-"))
                or d.channel.split("/")[-1] == "dram"
            ]
            self.total_channel = DERIVED_TOTAL
            parts = ", ".join(domains[i].channel for i in self._total_parts) or "nothing"
            self.total_source = f"sum of {parts}"

    @classmethod
    def probe(cls, options: MeterOptions) -> "RaplMeter":
        """Discover the zones under ``options.sysfs_root`` and read each counter once."""
        meter = cls(discover_domains(options.sysfs_root))
        logger.info("RAPL: %s; total %s", ", ".join(d.channel for d in meter.domains), meter.total_source)
        return meter

    def channels(self) -> List[ChannelInfo]:
        """One channel per domain, plus the derived total unless ``psys`` exists."""
        infos = [
            ChannelInfo(d.channel, str(d.energy_file), "uJ counter", {"max_energy_range_uj": d.max_range_uj})
            for d in self.domains
        ]
        if self.total_channel == DERIVED_TOTAL:
            infos.append(ChannelInfo(DERIVED_TOTAL, self.total_source, "J"))
        return infos

    def poll(self) -> List[MeterSample]:
        """Read every counter once and return the unwrapped cumulative energies in joules."""
        started_ns = time.monotonic_ns()
        try:
            raw = [handle.read() for handle in self._files]
        except (OSError, ValueError) as exc:
            raise MeterError(f"RAPL read failed: {exc}") from exc
        ended_ns = time.monotonic_ns()
        values: Dict[str, float] = {}
        for i, domain in enumerate(self.domains):
            self._total_uj[i] += unwrap_delta_uj(self._last_uj[i], raw[i], domain.max_range_uj)
            self._last_uj[i] = raw[i]
            values[domain.channel] = self._total_uj[i] / 1e6
        if self.total_channel == DERIVED_TOTAL:
            values[DERIVED_TOTAL] = sum(self._total_uj[i] for i in self._total_parts) / 1e6
        return [MeterSample((started_ns + ended_ns) // 2, values)]

    def close(self) -> None:
        """Close the counter files."""
        for handle in self._files:
            handle.close()
        self._files = []


def wrap_period_s(max_range_uj: int, peak_power_w: float) -> Optional[float]:
    """Seconds until a counter wraps at ``peak_power_w``: the longest safe gap between two reads."""
    if peak_power_w <= 0:
        return None
    return max_range_uj / 1e6 / peak_power_w

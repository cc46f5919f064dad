"""Jetson INA3221 power rails read from sysfs, discovered rather than hard-coded (platform.md 8).

Discovery: every ``sys/bus/i2c/devices/*/name`` that contains ``ina3221`` is a monitor. Two layouts:

- L4T R32 / JetPack 4 (``ina3221x`` iio driver): ``iio:device*/rail_name_N`` names channel N and
  ``in_powerN_input`` is its power in mW (``in_voltageN_input`` mV and ``in_currentN_input`` mA are
  the fallback when the power file is missing);
- JetPack 5+ (``ina3221`` hwmon driver): ``hwmon/hwmon*/inN_label`` names channel N, ``inN_input`` is
  the bus voltage in mV and ``currN_input`` the current in mA; power = V x I. Channels labelled
  "sum of shunt voltages" or "NC" are skipped.

Carrier-board monitors (0x42/0x43) appear too and are read like the module's. A rail name seen on
two monitors gets the device id appended (``VDD_3V3_SYS@0-0042``). The total is the module input
rail ``VDD_IN`` (``POM_5V_IN`` on the Nano); without one, a derived ``total`` channel sums every rail
and says so in ``total_source``. Values are reported in watts.
"""

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from cosmo_edge.energy.base import (
    POWER,
    ChannelInfo,
    EnergyMeter,
    MeterError,
    MeterOptions,
    MeterSample,
    MeterUnavailable,
)
from cosmo_edge.energy.sysfs import SysfsValue, read_text, sys_path

logger = logging.getLogger(__name__)

I2C_DEVICES = ("sys", "bus", "i2c", "devices")
TOTAL_RAIL_NAMES = ("VDD_IN", "POM_5V_IN")
DERIVED_TOTAL = "total"


@dataclass
class RailSource:
    """Where one rail's power comes from: a power file (mW), or a voltage (mV) and a current (mA) file."""

    name: str
    device: str
    layout: str
    power_mw: Optional[Path] = None
    voltage_mv: Optional[Path] = None
    current_ma: Optional[Path] = None


def _channel_index(file_name: str, prefix: str, suffix: str = "") -> Optional[int]:
    """``rail_name_2`` with prefix ``rail_name_`` -> 2; ``in1_label`` with ``in``/``_label`` -> 1."""
    core = file_name[len(prefix) : len(file_name) - len(suffix)] if suffix else file_name[len(prefix) :]
    return int(core) if core.isdigit() else None


def _iio_rails(device: Path) -> List[RailSource]:
    """Rails of one monitor in the L4T R32 iio layout."""
    rails: List[RailSource] = []
    for iio in sorted(device.glob("iio:device*")):
        for label_file in sorted(iio.glob("rail_name_*")):
            index = _channel_index(label_file.name, "rail_name_")
            if index is None:
                continue
            name = read_text(label_file)
            power = iio / f"in_power{index}_input"
            voltage = iio / f"in_voltage{index}_input"
            current = iio / f"in_current{index}_input"
            if power.exists():
                rails.append(RailSource(name, device.name, "iio", power_mw=power))
            elif voltage.exists() and current.exists():
                rails.append(RailSource(name, device.name, "iio", voltage_mv=voltage, current_ma=current))
            else:
                logger.info("%s: rail %s has no power or voltage/current file; skipped", iio, name)
    return rails


def _skip_hwmon_label(label: str) -> bool:
    """True for channels that are not rails: the shunt-voltage sum and unconnected ("NC") inputs."""
    return "sum of shunt" in label.lower() or "NC" in label.replace("_", " ").split()


def _hwmon_rails(device: Path) -> List[RailSource]:
    """Rails of one monitor in the JetPack 5+ hwmon layout."""
    rails: List[RailSource] = []
    for hwmon in sorted(device.glob("hwmon/hwmon*")):
        for label_file in sorted(hwmon.glob("in*_label")):
            index = _channel_index(label_file.name, "in", "_label")
            if index is None:
                continue
            name = read_text(label_file)
            if _skip_hwmon_label(name):
                logger.info("%s: skipping channel %d (%s)", hwmon, index, name)
                continue
            voltage = hwmon / f"in{index}_input"
            current = hwmon / f"curr{index}_input"
            if voltage.exists() and current.exists():
                rails.append(RailSource(name, device.name, "hwmon", voltage_mv=voltage, current_ma=current))
            else:
                logger.info(
                    "%s: rail %s lacks in%d_input or curr%d_input; skipped", hwmon, name, index, index
                )
    return rails


def discover_rails(sysfs_root: str = "/") -> List[RailSource]:
    """Every INA3221 rail under ``sysfs_root``, in device then channel order, with unique names."""
    devices_dir = sys_path(sysfs_root, *I2C_DEVICES)
    if not devices_dir.is_dir():
        return []
    rails: List[RailSource] = []
    for device in sorted(devices_dir.iterdir()):
        name_file = device / "name"
        if not name_file.is_file():
            continue
        try:
            chip = read_text(name_file)
        except OSError as exc:
            logger.info("%s unreadable (%s); skipped", name_file, exc)
            continue
        if "ina3221" not in chip:
            continue
        rails.extend(_iio_rails(device))
        rails.extend(_hwmon_rails(device))
    counts: Dict[str, int] = {}
    for rail in rails:
        counts[rail.name] = counts.get(rail.name, 0) + 1
    seen = set()
    for rail in rails:
        if counts[rail.name] > 1 and rail.name in seen:
            rail.name = f"{rail.name}@{rail.device}"
        seen.add(rail.name)
    return rails


class Ina3221Meter(EnergyMeter):
    """Power per INA3221 rail (watts), one synchronous sysfs read of every rail per ``poll()``."""

    name = "jetson_ina3221"
    quantity = POWER

    def __init__(self, rails: List[RailSource]) -> None:
        super().__init__()
        if not rails:
            raise MeterUnavailable("no INA3221 rails")
        self.rails = rails
        self._files: List[Tuple[str, Optional[SysfsValue], Optional[SysfsValue], Optional[SysfsValue]]] = []
        try:
            for rail in rails:
                self._files.append(
                    (
                        rail.name,
                        SysfsValue(rail.power_mw) if rail.power_mw else None,
                        SysfsValue(rail.voltage_mv) if rail.voltage_mv else None,
                        SysfsValue(rail.current_ma) if rail.current_ma else None,
                    )
                )
        except OSError as exc:
            self.close()
            raise MeterUnavailable(f"cannot open INA3221 files ({exc}); check read permission") from exc
        names = [rail.name for rail in rails]
        total = next((n for n in TOTAL_RAIL_NAMES if n in names), None)
        if total is not None:
            self.total_channel = total
            self.total_source = f"rail {total} (module input)"
        else:
            self.total_channel = DERIVED_TOTAL
            self.total_source = "sum of every rail (no VDD_IN rail found; nested rails may be counted twice)"

    @classmethod
    def probe(cls, options: MeterOptions) -> "Ina3221Meter":
        """Discover rails under ``options.sysfs_root`` and read each once."""
        rails = discover_rails(options.sysfs_root)
        if not rails:
            where = sys_path(options.sysfs_root, *I2C_DEVICES)
            raise MeterUnavailable(f"no INA3221 monitor with readable rails under {where}")
        meter = cls(rails)
        try:
            meter.poll()
        except MeterError as exc:
            meter.close()
            raise MeterUnavailable(str(exc)) from exc
        logger.info(
            "INA3221: %d rails (%s), total %s",
            len(rails),
            ", ".join(r.name for r in rails),
            meter.total_channel,
        )
        return meter

    def channels(self) -> List[ChannelInfo]:
        """One channel per rail, plus the derived total when there is no VDD_IN."""
        infos = []
        for rail in self.rails:
            if rail.power_mw is not None:
                infos.append(ChannelInfo(rail.name, str(rail.power_mw), "mW", {"layout": rail.layout}))
            else:
                source = f"{rail.voltage_mv} x {rail.current_ma}"
                infos.append(ChannelInfo(rail.name, source, "mV x mA", {"layout": rail.layout}))
        if self.total_channel == DERIVED_TOTAL:
            infos.append(ChannelInfo(DERIVED_TOTAL, "sum of rails", "W"))
        return infos

    def poll(self) -> List[MeterSample]:
        """Read every rail once; the sample time is the midpoint of the reads."""
        started_ns = time.monotonic_ns()
        values: Dict[str, float] = {}
        try:
            for name, power, voltage, current in self._files:
                if power is not None:
                    values[name] = power.read() / 1e3
                else:
                    assert voltage is not None and current is not None
                    values[name] = voltage.read() * current.read() / 1e6
        except (OSError, ValueError) as exc:
            raise MeterError(f"INA3221 read failed: {exc}") from exc
        ended_ns = time.monotonic_ns()
        if self.total_channel == DERIVED_TOTAL:
            values[DERIVED_TOTAL] = sum(values.values())
        return [MeterSample((started_ns + ended_ns) // 2, values)]

    def close(self) -> None:
        """Close every open attribute file."""
        for _, *files in self._files:
            for handle in files:
                if handle is not None:
                    handle.close()
        self._files = []

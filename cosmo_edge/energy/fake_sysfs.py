"""Fake sysfs trees laid out like the real ones, for tests and for running the meters without hardware.

``write_ina3221_iio`` writes the L4T R32 (JetPack 4) layout of platform.md section 8, e.g. the TX2's
``sys/bus/i2c/devices/0-0041/iio:device1/{rail_name_0,in_power0_input}``; ``write_ina3221_hwmon`` the
JetPack 5 hwmon layout (``hwmon/hwmonN/{inN_label,inN_input,currN_input}``); ``write_rapl`` the
powercap class (``sys/class/powercap/intel-rapl:N[:M]/{name,energy_uj,max_energy_range_uj}``).
Pass the tree's root as ``MeterOptions.sysfs_root`` (or ``cosmo-edge bench --sysfs-root``).
The real tree holds symlinks into ``/sys/devices``; plain folders behave the same for the meters.
"""

import logging
import os
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

logger = logging.getLogger(__name__)

_VALUE_WIDTH = 20

# Jetson TX2 on L4T R32: (i2c device, iio device, [(rail name, power mW)]) as in platform.md.
TX2_RAILS_MW: List[Tuple[str, str, List[Tuple[str, int]]]] = [
    ("0-0040", "iio:device0", [("VDD_SYS_GPU", 152), ("VDD_SYS_SOC", 380), ("VDD_4V0_WIFI", 0)]),
    ("0-0041", "iio:device1", [("VDD_IN", 1649), ("VDD_SYS_CPU", 152), ("VDD_SYS_DDR", 115)]),
]


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text + "\n", encoding="ascii")
    return path


def i2c_device_dir(root: Path, device: str) -> Path:
    """``root/sys/bus/i2c/devices/<device>``."""
    return Path(root) / "sys" / "bus" / "i2c" / "devices" / device


def write_ina3221_iio(
    root: Path,
    device: str,
    iio: str,
    rails_mw: Sequence[Tuple[str, int]],
    voltage_mv: int = 5000,
    with_power: bool = True,
    chip_name: str = "ina3221x",
) -> Dict[str, Path]:
    """One L4T R32 monitor; returns {rail: the file that holds its power (or current without power)}."""
    base = i2c_device_dir(root, device)
    _write(base / "name", chip_name)
    files: Dict[str, Path] = {}
    for index, (rail, power_mw) in enumerate(rails_mw):
        folder = base / iio
        _write(folder / f"rail_name_{index}", rail)
        _write(folder / f"in_voltage{index}_input", str(voltage_mv))
        _write(folder / f"in_current{index}_input", str(round(power_mw * 1000 / voltage_mv)))
        if with_power:
            files[rail] = _write(folder / f"in_power{index}_input", str(power_mw))
        else:
            files[rail] = folder / f"in_current{index}_input"
    return files


def write_tx2(root: Path) -> Dict[str, Path]:
    """The TX2's two module monitors (six rails) at their R32 paths; returns {rail: power file}."""
    files: Dict[str, Path] = {}
    for device, iio, rails in TX2_RAILS_MW:
        files.update(write_ina3221_iio(root, device, iio, rails))
    return files


def write_ina3221_hwmon(
    root: Path,
    device: str,
    hwmon: str,
    channels: Sequence[Tuple[str, int, int]],
    sum_of_shunt: bool = True,
) -> Dict[str, Tuple[Path, Path]]:
    """One JetPack 5 monitor: channels ``(label, mV, mA)`` as in1..inN; returns {label: (in, curr) files}.

    Adds the ``in7`` "sum of shunt voltages" channel that real trees have, which meters must skip.
    """
    base = i2c_device_dir(root, device)
    _write(base / "name", "ina3221")
    folder = base / "hwmon" / hwmon
    _write(folder / "name", "ina3221")
    files: Dict[str, Tuple[Path, Path]] = {}
    for index, (label, mv, ma) in enumerate(channels, start=1):
        _write(folder / f"in{index}_label", label)
        files[label] = (
            _write(folder / f"in{index}_input", str(mv)),
            _write(folder / f"curr{index}_input", str(ma)),
        )
    if sum_of_shunt:
        _write(folder / "in7_label", "sum of shunt voltages")
        _write(folder / "in7_input", "40")
    return files


def write_rapl(
    root: Path,
    zones: Sequence[Tuple[str, str, int, Optional[int]]],
) -> Dict[str, Path]:
    """Powercap zones ``(zone dir, name, energy_uj, max_energy_range_uj)``; returns {zone dir: energy_uj}.

    ``max_energy_range_uj`` None uses the common 262143328850.
    """
    base = Path(root) / "sys" / "class" / "powercap"
    base.mkdir(parents=True, exist_ok=True)
    files: Dict[str, Path] = {}
    for zone, name, energy_uj, max_range in zones:
        _write(base / zone / "name", name)
        _write(base / zone / "max_energy_range_uj", str(max_range if max_range is not None else 262143328850))
        files[zone] = _write(base / zone / "energy_uj", str(energy_uj))
    return files


def set_value(path: Path, value: int) -> None:
    """Overwrite an attribute file in place with a new integer (what the kernel would show next).

    The file is rewritten in place (same inode, so a meter's open descriptor sees it) as one
    fixed-width write, so a concurrent reader sees the old or the new number, never an empty file.
    """
    text = f"{int(value):<{_VALUE_WIDTH}d}\n".encode("ascii")
    fd = os.open(str(path), os.O_WRONLY)
    try:
        os.pwrite(fd, text, 0)
        os.ftruncate(fd, len(text))
    finally:
        os.close(fd)

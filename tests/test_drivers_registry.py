"""Driver registry: type keys, unknown keys, and the missing-dependency report."""

import builtins
import subprocess
import sys

import pytest

from drivers.base import Driver, DriverError, MissingDependencyError
from drivers.registry import create_driver, driver_types, register_driver


def test_builtin_types_listed() -> None:
    assert {"imu_serial", "radar_ti", "realsense_depth"} <= set(driver_types())


def test_unknown_type_lists_known_ones() -> None:
    with pytest.raises(DriverError, match="unknown driver type 'lidar'.*imu_serial"):
        create_driver("lidar")


def test_register_extra_driver() -> None:
    class Null(Driver):
        def __init__(self, stream: str = "null") -> None:
            super().__init__(stream)

    register_driver("null_test", Null)
    assert isinstance(create_driver("null_test"), Null)
    with pytest.raises(ValueError):
        register_driver("null_test", Null)
    assert create_driver("null_test").counters == {
        "frames_ok": 0,
        "frames_bad": 0,
        "bytes_skipped": 0,
        "reconnects": 0,
    }


def test_missing_pyrealsense2_reported_when_chosen(monkeypatch) -> None:
    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name == "pyrealsense2":
            raise ImportError("No module named 'pyrealsense2'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    with pytest.raises(MissingDependencyError, match=r"pyrealsense2.*cosmo-edge\[realsense\]"):
        create_driver("realsense_depth")


def test_importing_drivers_does_not_import_optional_packages() -> None:
    code = (
        "import sys, drivers, drivers.registry, drivers.sim; "
        "print('pyrealsense2' in sys.modules, 'cosmo_edge' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]

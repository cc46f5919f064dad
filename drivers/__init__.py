"""Sensor drivers: each turns a device's wire protocol into timestamped ``Sample`` objects.

Drivers never import ``cosmo_edge``; the daemon picks them by their registered ``type`` key.
"""

from drivers.base import DeviceClock, Driver, DriverError, MissingDependencyError
from drivers.registry import create_driver, driver_types, register_driver
from drivers.sample import Sample

__all__ = [
    "DeviceClock",
    "Driver",
    "DriverError",
    "MissingDependencyError",
    "Sample",
    "create_driver",
    "driver_types",
    "register_driver",
]

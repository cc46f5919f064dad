"""Driver registry: the config names a driver by its ``type`` key and this module builds it.

Driver modules are imported only when their key is chosen, so a missing optional dependency
(pyrealsense2) is reported for that driver, with the install hint, and never at ``import drivers``.
"""

import importlib
import logging
from typing import Any, Callable, Dict, List

from drivers.base import Driver, DriverError

logger = logging.getLogger(__name__)

# type key -> "module:factory"; imported lazily by create_driver.
_BUILTIN: Dict[str, str] = {
    "imu_serial": "drivers.imu_serial:ImuSerialDriver",
    "radar_ti": "drivers.radar_ti:TiRadarDriver",
    "realsense_depth": "drivers.realsense_depth:RealSenseDepthDriver",
}
_REGISTERED: Dict[str, Callable[..., Driver]] = {}


def register_driver(type_key: str, factory: Callable[..., Driver]) -> None:
    """Register an extra driver factory (e.g. a test double) under ``type_key``."""
    if type_key in _BUILTIN or type_key in _REGISTERED:
        raise ValueError(f"driver type {type_key!r} is already registered")
    _REGISTERED[type_key] = factory


def driver_types() -> List[str]:
    """Every type key ``create_driver`` accepts, sorted."""
    return sorted(set(_BUILTIN) | set(_REGISTERED))


def _load_factory(type_key: str) -> Callable[..., Driver]:
    """Import the module behind a built-in key and return its factory."""
    module_name, _, attr = _BUILTIN[type_key].partition(":")
    module = importlib.import_module(module_name)
    return getattr(module, attr)


def create_driver(type_key: str, **config: Any) -> Driver:
    """Build the driver registered as ``type_key`` with ``config`` as keyword arguments.

    Raises:
        DriverError: unknown key (the message lists the known ones).
        MissingDependencyError: the driver needs a package that is not installed.
        TypeError: a config key the driver does not take.
    """
    if type_key in _REGISTERED:
        factory = _REGISTERED[type_key]
    elif type_key in _BUILTIN:
        factory = _load_factory(type_key)
    else:
        raise DriverError(f"unknown driver type {type_key!r}; known types: {', '.join(driver_types())}")
    logger.debug("creating driver %s with %s", type_key, sorted(config))
    return factory(**config)

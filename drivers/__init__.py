"""Sensor drivers: each turns a device's wire protocol into timestamped ``Sample`` objects.

Drivers never import ``cosmo_edge``; the daemon picks them by their registered ``type`` key.
"""

from drivers.sample import Sample

__all__ = ["Sample"]

"""Simulated sensors that speak the real wire protocols (ptys, a software RealSense device).

``Simulator(SimConfig(...)).start()`` plays a scripted person (or UTD-MHAD recordings) to the
drivers; see ``drivers.sim.simulator``. Nothing here imports ``cosmo_edge``.
"""

from drivers.sim.simulator import DepthSimConfig, ImuSimConfig, RadarSimConfig, SimConfig, Simulator

__all__ = ["DepthSimConfig", "ImuSimConfig", "RadarSimConfig", "SimConfig", "Simulator"]

"""The ``none`` meter: no energy counter exists here, so nothing is measured (platform.md section 8).

It reports ``{"available": false, "reason": ...}`` and never a number. ``tdp_estimate`` is the only
way to get an energy figure without a counter, and only when asked: it is returned in a separate
``energy_estimate_j`` field with its ``method``, never mixed with measurements.
"""

import logging
from typing import Any, Dict, List

from cosmo_edge.energy.base import ChannelInfo, EnergyMeter, MeterOptions, MeterSample

logger = logging.getLogger(__name__)

TDP_FRACTION = 0.5


class NoneMeter(EnergyMeter):
    """A meter without counters: ``available`` is False and ``reason`` says why."""

    name = "none"
    available = False

    def __init__(self, reason: str = "no energy meter selected") -> None:
        super().__init__()
        self.reason = reason

    @classmethod
    def probe(cls, options: MeterOptions) -> "NoneMeter":
        """Always succeeds: asking for ``none`` explicitly means no measurement."""
        del options
        return cls("energy measurement switched off (meter 'none' asked for)")

    def channels(self) -> List[ChannelInfo]:
        """No channels."""
        return []

    def poll(self) -> List[MeterSample]:
        """Never any samples."""
        return []


def tdp_estimate(
    tdp_w: float, duration_s: float, inferences: int, fraction: float = TDP_FRACTION
) -> Dict[str, Any]:
    """An energy *estimate* (not a measurement): ``fraction`` of the CPU's TDP over ``duration_s``.

    This is codecarbon's fallback when no counter exists (50 % of TDP). Returned as
    ``{"energy_estimate_j", "energy_estimate_per_inference_j", "method"}``.
    """
    if tdp_w <= 0 or duration_s <= 0 or inferences <= 0:
        raise ValueError("tdp_w, duration_s and inferences must be positive")
    energy_j = fraction * tdp_w * duration_s
    return {
        "energy_estimate_j": energy_j,
        "energy_estimate_per_inference_j": energy_j / inferences,
        "method": f"{fraction:.0%} of a {tdp_w:g} W TDP x wall time (estimate, not measured)",
    }

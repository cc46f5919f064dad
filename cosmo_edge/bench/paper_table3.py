"""The paper's Table 3 (training overhead on the Jetson TX2) and the ratios compared with it.

cosmo-method.md section 10 gives Cosmo stage 2, DeepSense and AttnSense training time and energy at
1 % and 2 % labels. Hardware, dataset and model size differ from any run here, so only the ratios
Cosmo / DeepSense and Cosmo / AttnSense are compared (``comparison``).
"""

from typing import Any, Dict, List, Optional

CAVEAT = (
    "The paper's numbers are from a Jetson TX2 on a larger dataset with a larger model; absolute "
    "times and energies do not transfer, so compare the ratios Cosmo / DeepSense and Cosmo / AttnSense."
)

# cosmo-method.md section 10, Table 3 (training overhead on the Jetson TX2; stage 2 only for Cosmo).
PAPER_TABLE3: Dict[str, Dict[str, Dict[str, float]]] = {
    "time_min": {
        "1%": {"cosmo": 25.93, "deepsense": 38.38, "attnsense": 62.52},
        "2%": {"cosmo": 49.87, "deepsense": 74.42, "attnsense": 120.98},
    },
    "energy_kj": {
        "1%": {"cosmo": 21.34, "deepsense": 30.99, "attnsense": 51.71},
        "2%": {"cosmo": 40.35, "deepsense": 60.90, "attnsense": 98.58},
    },
}
PAPER_SOURCE = "cosmo-method.md section 10, Table 3 [deck]: Jetson TX2, dataset not named (likely USC-HAD)"


def ratio(numerator: Optional[float], denominator: Optional[float]) -> Optional[float]:
    """``numerator / denominator``, or None when either is missing or the denominator is not positive."""
    if numerator is None or denominator is None or denominator <= 0:
        return None
    return numerator / denominator


def cosmo_ratios(values: Dict[str, Optional[float]]) -> Dict[str, Optional[float]]:
    """``{"cosmo/deepsense": .., "cosmo/attnsense": ..}`` of one quantity per method."""
    return {
        f"cosmo/{other}": ratio(values.get("cosmo"), values.get(other))
        for other in ("deepsense", "attnsense")
    }


def paper_ratios() -> Dict[str, Dict[str, Dict[str, Optional[float]]]]:
    """The Table 3 ratios: ``{quantity: {rate: {"cosmo/deepsense": .., "cosmo/attnsense": ..}}}``."""
    return {
        quantity: {rate: cosmo_ratios(dict(cells)) for rate, cells in table.items()}
        for quantity, table in PAPER_TABLE3.items()
    }


def comparison(runs: List[Dict[str, Any]]) -> Dict[str, Any]:
    """Per rate: measured times and net J per method, and the Cosmo ratios measured and in the paper.

    ``ratios_time`` and ``ratios_energy`` put Cosmo's whole round over the baselines' training;
    ``ratios_train_time`` puts the round's training step alone over the same.
    """
    out: Dict[str, Any] = {}
    for rate in sorted({r["rate"] for r in runs}, key=lambda k: float(k.rstrip("%"))):
        rows = {r["method"]: r for r in runs if r["rate"] == rate}
        time_s = {m: rows[m]["wall_s"] for m in rows}
        train_s = {m: rows[m].get("train_s") for m in rows}
        energy_j = {m: (rows[m].get("energy") or {}).get("net_j") for m in rows}
        paper = paper_ratios()
        out[rate] = {
            "wall_s": time_s,
            "train_s": train_s,
            "net_energy_j": energy_j,
            "ratios_time": cosmo_ratios(time_s),
            "ratios_train_time": cosmo_ratios(train_s),
            "ratios_energy": cosmo_ratios(energy_j),
            "paper_ratios_time": paper["time_min"].get(rate),
            "paper_ratios_energy": paper["energy_kj"].get(rate),
        }
    return out

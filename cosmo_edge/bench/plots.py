"""PNG plots of a benchmark: the latency CDF per backend and the energy per window per backend.

matplotlib is imported inside the functions with the non-interactive Agg backend (no display on
the device). Where no energy meter exists, the energy figure says so with the meter's reason
instead of showing bars.
"""

import logging
from pathlib import Path
from typing import Any, Dict

import numpy as np

logger = logging.getLogger(__name__)


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_latency_cdf(latencies_s: Dict[str, np.ndarray], path: Path, title: str = "") -> Path:
    """One empirical CDF line per backend, latency in ms on a log axis, p50/p99 marked."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, values in latencies_s.items():
        ms = np.sort(np.asarray(values)) * 1e3
        frac = np.arange(1, ms.size + 1) / ms.size
        (line,) = ax.step(ms, frac, where="post", label=f"{name} (p50 {np.percentile(ms, 50):.2f} ms)")
        ax.plot([np.percentile(ms, 99)], [0.99], marker="o", color=line.get_color())
    ax.set_xscale("log")
    ax.set_xlabel("latency per call (ms, log scale); dot = p99")
    ax.set_ylabel("fraction of calls")
    ax.set_ylim(0, 1.01)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="lower right")
    ax.set_title(title or "latency CDF per backend")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_energy(results: Dict[str, Any], path: Path) -> Path:
    """Gross and net (idle subtracted) mJ per window on the total channel, one bar pair per backend."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    meter = results["meter"]
    rows = []
    for record in results["backends"]:
        energy = record.get("energy", {})
        if record["status"] == "ok" and energy.get("available"):
            total = energy["channels"].get(energy.get("total_channel") or "", {})
            rows.append(
                (record["name"], total.get("gross_j_per_inference"), total.get("net_j_per_inference"))
            )
    if not meter.get("available") or not rows:
        reason = meter.get("reason") or "no backend produced an energy window"
        ax.axis("off")
        ax.text(0.5, 0.5, "energy not measured:\n" + reason, ha="center", va="center", wrap=True, fontsize=10)
    else:
        x = np.arange(len(rows))
        gross = [np.nan if g is None else g * 1e3 for _, g, _ in rows]
        net = [np.nan if n is None else n * 1e3 for _, _, n in rows]
        ax.bar(x - 0.2, gross, 0.4, label="gross")
        ax.bar(x + 0.2, net, 0.4, label="net (idle subtracted)")
        ax.set_xticks(x)
        ax.set_xticklabels([name for name, _, _ in rows])
        ax.set_ylabel(f"mJ per window ({meter['total_channel']})")
        ax.legend()
        ax.grid(True, axis="y", alpha=0.3)
    ax.set_title(f"energy per window, meter {meter.get('meter')}")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path

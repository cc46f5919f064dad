"""PNG plots of a benchmark: latency CDF per backend, energy per window, end-to-end CDF, fine-tuning.

matplotlib is imported inside the functions with the non-interactive Agg backend (no display on
the device). Where no energy meter exists, the energy figure says so with the meter's reason
instead of showing bars.
"""

import logging
import textwrap
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
                (
                    record.get("label", record["name"]),
                    total.get("gross_j_per_inference"),
                    total.get("net_j_per_inference"),
                )
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


def plot_e2e_cdf(delays_ms: Dict[str, Any], path: Path, results: Dict[str, Any]) -> Path:
    """Empirical CDF of each end-to-end delay kind (ms, linear axis), p50/p99 in the legend."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for kind, values in delays_ms.items():
        if not len(values):
            continue
        ms = np.sort(np.asarray(values, dtype=float))
        frac = np.arange(1, ms.size + 1) / ms.size
        label = (
            f"{kind.replace('_', ' ')} (p50 {np.percentile(ms, 50):.1f}, p99 {np.percentile(ms, 99):.1f} ms)"
        )
        ax.step(ms, frac, where="post", label=label)
    e2e = results.get("end_to_end", {})
    ax.set_xlabel("ms")
    ax.set_ylabel("fraction of windows")
    ax.set_ylim(0, 1.01)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title(f"end to end: daemon ({e2e.get('engine')}) -> subscriber, {e2e.get('windows')} windows")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_finetune(section: Dict[str, Any], path: Path) -> Path:
    """Time per method and label rate, net energy where measured, and test accuracy before and after.

    Time: Cosmo's bar is its whole round, with its training step drawn hatched inside it; the
    baselines' bars are their training alone.
    """
    plt = _pyplot()
    fig, (ax_t, ax_e, ax_a) = plt.subplots(1, 3, figsize=(15, 4.5))
    runs = section["runs"]
    rates = list(dict.fromkeys(r["rate"] for r in runs))
    methods = list(dict.fromkeys(r["method"] for r in runs))
    x = np.arange(len(rates))
    width = 0.8 / max(1, len(methods))
    have_energy = False
    for k, method in enumerate(methods):
        rows = [next(r for r in runs if r["rate"] == rate and r["method"] == method) for rate in rates]
        offset = x + (k - (len(methods) - 1) / 2) * width
        bars = ax_t.bar(offset, [r["wall_s"] for r in rows], width, label=method)
        if method == "cosmo":
            train_s = [np.nan if r.get("train_s") is None else r["train_s"] for r in rows]
            color = bars.patches[0].get_facecolor() if bars.patches else None
            ax_t.bar(
                offset,
                train_s,
                width,
                color=color,
                hatch="//",
                edgecolor="white",
                label="cosmo: training step",
            )
        net = [(r.get("energy") or {}).get("net_j") for r in rows]
        if any(v is not None for v in net):
            have_energy = True
            values = [np.nan if v is None else v for v in net]
            ax_e.bar(offset, values, width, label=method)
        after = [r["test_accuracy"] for r in rows]
        before = [np.nan if r.get("start_test_accuracy") is None else r["start_test_accuracy"] for r in rows]
        ax_a.bar(offset, after, width, label=f"{method} after")
        ax_a.scatter(offset, before, color="black", marker="_", s=200, zorder=3)
    for ax in (ax_t, ax_e, ax_a):
        ax.set_xticks(x)
        ax.set_xticklabels([f"{rate} labels" for rate in rates])
        ax.grid(True, axis="y", alpha=0.3)
    ax_t.set_ylabel("wall time (s)")
    ax_t.legend(fontsize=8)
    ax_t.set_title("cosmo: whole round; baselines: training", fontsize=10)
    ax_a.set_ylabel("test accuracy")
    ax_a.set_ylim(0, 1.05)
    ax_a.legend(fontsize=8, loc="upper left")
    ax_a.set_title("test accuracy after (bars) and before (black ticks)", fontsize=10)
    if have_energy:
        ax_e.set_ylabel("net energy (J, idle subtracted)")
        ax_e.legend(fontsize=8)
        ax_e.set_title("energy over the wall-time span", fontsize=10)
    else:
        reason = next(((r.get("energy") or {}).get("reason") for r in runs), None) or "no meter"
        ax_e.axis("off")
        text = "energy not measured:\n" + textwrap.fill(reason, 45)  # wrap=True breaks tight_layout
        ax_e.text(0.5, 0.5, text, ha="center", va="center", fontsize=8, transform=ax_e.transAxes)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path

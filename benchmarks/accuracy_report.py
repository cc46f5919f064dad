"""Tables and plot for ``accuracy_utd.py``: mean +- std over seeds per modality pair and label rate."""

import json
import pathlib
from collections import defaultdict
from typing import Any, Dict, List, Tuple

import numpy as np


def mean_std(values: List[float]) -> Tuple[float, float]:
    """Mean and sample standard deviation (ddof = 1; 0 for a single value)."""
    array = np.asarray(values, dtype=np.float64)
    return float(array.mean()), float(array.std(ddof=1)) if len(array) > 1 else 0.0


def fmt(values: List[float], scale: float = 100.0) -> str:
    mean, std = mean_std(values)
    return f"{scale * mean:.1f} ± {scale * std:.1f}"


def group_rows(rows: List[Dict[str, Any]]) -> Dict[Tuple[str, float], List[Dict[str, Any]]]:
    groups: Dict[Tuple[str, float], List[Dict[str, Any]]] = defaultdict(list)
    for row in rows:
        groups[(row["pair"], row["rate"])].append(row)
    return dict(
        sorted(groups.items(), key=lambda item: (item[0][0] != "imu,skeleton", item[0][0], item[0][1]))
    )


def accuracy_table(groups) -> List[str]:
    lines = [
        "| modalities | label rate | labeled | seeds | Cosmo acc | Cosmo macro-F1 | supervised acc "
        "| supervised macro-F1 | Δ acc (points) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for (pair, rate), rows in groups.items():
        cosmo = [r["cosmo"]["test_accuracy"] for r in rows]
        sup = [r["supervised"]["test_accuracy"] for r in rows]
        delta = [100 * (c - s) for c, s in zip(cosmo, sup)]
        lines.append(
            f"| {pair.replace(',', ' + ')} | {rate:g} % | {rows[0]['labeled']} | {len(rows)} | {fmt(cosmo)} "
            f"| {fmt([r['cosmo']['test_macro_f1'] for r in rows])} | {fmt(sup)} "
            f"| {fmt([r['supervised']['test_macro_f1'] for r in rows])} | {fmt(delta, 1.0)} |"
        )
    return lines


def large_table(large, groups) -> List[str]:
    lines = [
        "| modalities | label rate | parameters | supervised acc | supervised macro-F1 "
        "| Cosmo acc (edge model) |",
        "|---|---|---|---|---|---|",
    ]
    for (pair, rate), rows in large.items():
        cosmo = groups.get((pair, rate), [])
        cosmo_cell = fmt([r["cosmo"]["test_accuracy"] for r in cosmo]) if cosmo else "-"
        lines.append(
            f"| {pair.replace(',', ' + ')} | {rate:g} % | {rows[0]['parameters']:,} "
            f"| {fmt([r['supervised']['test_accuracy'] for r in rows])} "
            f"| {fmt([r['supervised']['test_macro_f1'] for r in rows])} | {cosmo_cell} |"
        )
    return lines


def valsel_table(groups) -> List[str]:
    lines = [
        "| modalities | label rate | Cosmo acc | Cosmo macro-F1 | supervised acc | supervised macro-F1 |",
        "|---|---|---|---|---|---|",
    ]
    for (pair, rate), rows in groups.items():
        if not all("valsel_test_accuracy" in r["cosmo"] for r in rows):
            continue
        name = pair.replace(",", " + ")
        lines.append(
            f"| {name} | {rate:g} % | {fmt([r['cosmo']['valsel_test_accuracy'] for r in rows])} "
            f"| {fmt([r['cosmo']['valsel_test_macro_f1'] for r in rows])} "
            f"| {fmt([r['supervised']['valsel_test_accuracy'] for r in rows])} "
            f"| {fmt([r['supervised']['valsel_test_macro_f1'] for r in rows])} |"
        )
    return lines


def time_table(groups) -> List[str]:
    lines = [
        "| modalities | label rate | stage 1 (s) | QoM (s) | stage 2 (s) | supervised (s) |",
        "|---|---|---|---|---|---|",
    ]
    for (pair, rate), rows in groups.items():
        cells = [fmt([r[key] for r in rows], 1.0) for key in ("stage1_s", "qom_s")] + [
            fmt([r[part]["seconds"] for r in rows], 1.0) for part in ("cosmo", "supervised")
        ]
        lines.append(f"| {pair.replace(',', ' + ')} | {rate:g} % | " + " | ".join(cells) + " |")
    return lines


def qom_table(groups) -> List[str]:
    lines = [
        "| modalities | label rate | seed | Hopkins H | k* | c | β_QoM |",
        "|---|---|---|---|---|---|---|",
    ]
    for (pair, rate), rows in groups.items():
        for r in sorted(rows, key=lambda row: row["seed"]):
            qom = r["qom"]
            if qom.get("hopkins") is None:
                continue
            lines.append(
                f"| {pair.replace(',', ' + ')} | {rate:g} % | {r['seed']} "
                f"| {', '.join(f'{h:.3f}' for h in qom['hopkins'])} "
                f"| {', '.join(str(k) for k in qom['k_star'])} "
                f"| {', '.join(str(c) for c in qom['cluster_error'])} "
                f"| {', '.join(f'{w:.3f}' for w in qom['weights'])} |"
            )
    return lines


def size_lines(rows: List[Dict[str, Any]]) -> List[str]:
    seen = {}
    for r in rows:
        seen[r["pair"]] = (r["parameters"], r["flops_per_sample"])
    return [
        f"- {pair.replace(',', ' + ')}: {params:,} parameters, {flops / 1e6:.1f} MFLOPs per window"
        for pair, (params, flops) in seen.items()
    ]


def plot(groups, path: pathlib.Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pairs = sorted({pair for pair, _ in groups}, key=lambda p: (p != "imu,skeleton", p))
    fig, axes = plt.subplots(1, len(pairs), figsize=(5.5 * len(pairs), 4), squeeze=False)
    for ax, pair in zip(axes[0], pairs):
        rates = sorted(rate for p, rate in groups if p == pair)
        for part, label, marker in (("cosmo", "Cosmo", "o"), ("supervised", "supervised (same model)", "s")):
            stats = [mean_std([r[part]["test_accuracy"] for r in groups[(pair, rate)]]) for rate in rates]
            ax.errorbar(rates, [100 * m for m, _ in stats], yerr=[100 * s for _, s in stats], marker=marker,
                        capsize=3, label=label)  # fmt: skip
        ax.set_title(f"UTD-MHAD {pair.replace(',', ' + ')}")
        ax.set_xlabel("label rate (%)")
        ax.set_ylabel("test accuracy, last epoch (%)")
        ax.set_xticks(rates)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def total_stage_seconds(rows: List[Dict[str, Any]], large) -> float:
    """Sum of the timed stages (stage 1, QoM, stage 2, supervised) over every run."""
    total = sum(r["stage1_s"] + r["qom_s"] + r["cosmo"]["seconds"] + r["supervised"]["seconds"] for r in rows)
    return total + sum(r["supervised"]["seconds"] for group in large.values() for r in group)


def write_report(rows: List[Dict[str, Any]], out: pathlib.Path, run: Dict[str, Any]) -> None:
    """Write ``out``.md (tables) and ``out``.png (accuracy vs label rate)."""
    large = group_rows([r for r in rows if r.get("variant") == "large-supervised"])
    rows = [r for r in rows if r.get("variant", "cosmo") == "cosmo"]
    groups = group_rows(rows)
    settings: Dict[str, List[str]] = defaultdict(list)  # settings JSON -> "pair at rates"
    for (pair, rate), rs in groups.items():
        settings[json.dumps(rs[0]["settings"], sort_keys=True)].append(f"{pair} {rate:g} %")
    lines = [
        "# UTD-MHAD accuracy: Cosmo vs. the supervised baseline",
        "",
        "Cross-subject protocol (cosmo-method.md section 7): subjects 1-6 train, 7-8 test (215 trials);",
        "r/5 labeled trials per class, stage 1 sees only that rate's unlabeled split; the supervised",
        "baseline is the same encoders + classifier trained from scratch on the same labels with the same",
        "augmentations. Test accuracy and macro-F1 at the **last epoch**, mean ± std (ddof = 1) over seeds.",
        "",
        "## Test accuracy (last epoch)",
        "",
        *accuracy_table(groups),
        "",
        f"![accuracy vs label rate]({out.with_suffix('.png').name})",
        "",
        "## The best supervised model of any size found",
        "",
        "Wider encoders and head (about 1 M parameters), trained like the supervised baseline above.",
        "",
        *large_table(large, groups),
        "",
        "## Test accuracy at the epoch selected on the validation split",
        "",
        "Selection uses the 106 validation trials' labels (extra supervision); shown for reference only.",
        "",
        *valsel_table(groups),
        "",
        "## Wall time per run (s, mean ± std)",
        "",
        *time_table(groups),
        "",
        "## QoM per run (order of the modalities as in the pair)",
        "",
        *qom_table(groups),
        "",
        "## Model size",
        "",
        *size_lines(rows),
        "",
        "## Settings",
        "",
        f"- command: `python benchmarks/accuracy_utd.py {' '.join(run['argv'])}`",
        f"- {run['workers']} worker process(es), one torch thread each, on {run['cpus']} CPU(s); "
        f"the last invocation ran {run.get('ran', 0)} of them in {run['wall_s'] / 60:.1f} min "
        f"(the rest came from `{out.with_suffix('.jsonl').name}`); "
        f"the stage times of all {len(rows) + sum(len(r) for r in large.values())} runs add up to "
        f"{total_stage_seconds(rows, large) / 60:.1f} min",
        *[f"- {', '.join(where)}: `{text}`" for text, where in settings.items()],
        "",
    ]
    out.with_suffix(".md").write_text("\n".join(lines), encoding="utf-8")
    plot(groups, out.with_suffix(".png"))

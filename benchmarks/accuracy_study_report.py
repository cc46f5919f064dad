"""Tables and plots of the accuracy study (``accuracy.py``): mean +- std over seeds, last epoch."""

import json
import pathlib
from collections import defaultdict
from typing import Any, Dict, List, Tuple

import numpy as np

MAIN_ORDER = ("cosmo", "supervised", "attnsense", "deepsense", "cmc", "cpc")
ABLATION_KINDS = ("no-qom", "no-alternation", "sum-attn", "fixed-weights")
CURVES = ("cosmo", "supervised", "attnsense", "deepsense", "cmc", "cpc")


def mean_std(values: List[float]) -> Tuple[float, float]:
    """Mean and sample standard deviation (ddof = 1; 0 for one value)."""
    array = np.asarray(values, dtype=np.float64)
    return float(array.mean()), float(array.std(ddof=1)) if len(array) > 1 else 0.0


def fmt(values: List[float], scale: float = 100.0) -> str:
    if not values:
        return "-"
    mean, std = mean_std(values)
    return f"{scale * mean:.1f} ± {scale * std:.1f} (n={len(values)})"


def collect(results: List[Dict[str, Any]]) -> Dict[Tuple[str, float], List[Dict[str, Any]]]:
    """(variant, rate) -> result rows (each with its seed)."""
    table: Dict[Tuple[str, float], List[Dict[str, Any]]] = defaultdict(list)
    for task in results:
        for row in task["rows"]:
            table[(row["variant"], task["rate"])].append(dict(row, seed=task["seed"]))
    return table


def main_variants(table) -> List[str]:
    names = {v for v, _ in table if v in MAIN_ORDER or v.startswith("singlemodal-")}
    return [v for v in MAIN_ORDER if v in names] + sorted(n for n in names if n.startswith("singlemodal-"))


def metric_table(table, rates: List[float], key: str) -> List[str]:
    lines = ["| method | " + " | ".join(f"{r:g} %" for r in rates) + " |", "|---" * (len(rates) + 1) + "|"]
    for variant in main_variants(table):
        cells = [fmt([row[key] for row in table.get((variant, r), []) if key in row]) for r in rates]
        lines.append(f"| {variant} | " + " | ".join(cells) + " |")
    return lines


def verdict_lines(table, rates: List[float]) -> List[str]:
    """Per rate: is Cosmo's mean last-epoch accuracy above every baseline's? (paired deltas)."""
    lines = []
    for rate in rates:
        cosmo = {r["seed"]: r["test_accuracy"] for r in table.get(("cosmo", rate), [])}
        if not cosmo:
            continue
        behind, deltas = [], {}
        for variant in main_variants(table):
            other = {r["seed"]: r["test_accuracy"] for r in table.get((variant, rate), [])}
            seeds = sorted(set(cosmo) & set(other))
            if variant == "cosmo" or not seeds:
                continue
            deltas[variant] = [100 * (cosmo[s] - other[s]) for s in seeds]
            if np.mean(deltas[variant]) <= 0:
                behind.append(f"{variant} ({np.mean(deltas[variant]):+.1f} points)")
        if not deltas:
            continue
        closest = min(deltas, key=lambda v: np.mean(deltas[v]))
        margin = f"closest: {closest}, Cosmo minus it {fmt(deltas[closest], 1.0)} points, paired by seed"
        if behind:
            lines.append(f"- {rate:g} %: Cosmo is NOT ahead of: {', '.join(behind)} ({margin}).")
        else:
            lines.append(f"- {rate:g} %: Cosmo's mean accuracy is above every baseline's ({margin}).")
    return lines


def ablation_table(table, rates: List[float]) -> List[str]:
    lines = ["| variant | label rate | accuracy | macro-F1 |", "|---|---|---|---|"]
    for rate in rates:
        names = ["cosmo", *ABLATION_KINDS] + sorted(v for v, r in table if r == rate and v.startswith("P="))
        seeds = {r["seed"] for v in names[1:] for r in table.get((v, rate), [])}
        for name in names:
            rows = [r for r in table.get((name, rate), []) if r["seed"] in seeds]
            if rows:
                lines.append(
                    f"| {name} | {rate:g} % | {fmt([r['test_accuracy'] for r in rows])} "
                    f"| {fmt([r['test_macro_f1'] for r in rows])} |"
                )
    return lines


def unlabeled_rows(results, table, rate: float) -> List[Tuple[float, int, List[float]]]:
    """(fraction, unlabeled samples used, accuracies) with fraction 1.0 from the main Cosmo runs."""
    by_fraction: Dict[float, Tuple[int, List[float]]] = {}
    seeds = set()
    for task in results:
        if task["kind"] == "unlabeled" and task["rate"] == rate:
            used, accs = by_fraction.get(float(task["param"]), (task["unlabeled_used"], []))
            by_fraction[float(task["param"])] = (used, accs + [task["rows"][0]["test_accuracy"]])
            seeds.add(task["seed"])
    full = [t for t in results if t["kind"] == "cosmo" and t["rate"] == rate and t["seed"] in seeds]
    if full:
        by_fraction[1.0] = (full[0]["unlabeled"], [t["rows"][0]["test_accuracy"] for t in full])
    return [(f, used, accs) for f, (used, accs) in sorted(by_fraction.items())]


def time_lines(results) -> List[str]:
    lines = ["| task | runs | pre-training (s) | labeled stage, per model (s) |", "|---|---|---|---|"]
    kinds: Dict[str, List[Dict[str, Any]]] = defaultdict(list)
    for task in results:
        kinds[task["kind"]].append(task)
    for kind, tasks in sorted(kinds.items()):
        pre = [t["pretrain_s"] for t in tasks if "pretrain_s" in t]
        fine = [r["seconds"] for t in tasks for r in t["rows"]]
        lines.append(f"| {kind} | {len(tasks)} | {fmt(pre, 1.0)} | {fmt(fine, 1.0)} |")
    return lines


def plots(results, table, rates, stem: pathlib.Path, curve_rate: float, unl_rate: float) -> List[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = []
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, key, label in zip(axes, ("test_accuracy", "test_macro_f1"), ("accuracy", "macro-F1")):
        for variant in main_variants(table):
            used = [r for r in rates if table.get((variant, r))]
            stats = [mean_std([row[key] for row in table[(variant, r)]]) for r in used]
            ax.errorbar(used, [100 * m for m, _ in stats], yerr=[100 * s for _, s in stats], marker="o",
                        capsize=3, label=variant, lw=2.5 if variant == "cosmo" else 1.2)  # fmt: skip
        ax.set_xlabel("label rate (%)")
        ax.set_ylabel(f"test {label}, last epoch (%)")
        ax.set_xticks(rates)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    names.append(stem.name + "_rates.png")
    fig.savefig(stem.parent / names[-1], dpi=110)
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(6, 4))
    for variant in CURVES:
        rows = [r for r in table.get((variant, curve_rate), []) if r.get("history")]
        if not rows:
            continue
        epochs = [h["epoch"] for h in rows[0]["history"]]
        acc = np.mean([[h["test_accuracy"] for h in r["history"]] for r in rows], axis=0)
        ax.plot(epochs, 100 * acc, marker=".", label=variant, lw=2.5 if variant == "cosmo" else 1.2)
    ax.set_xlabel("labeled-stage epoch")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(f"convergence at {curve_rate:g} % labels (mean over seeds)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    names.append(stem.name + "_convergence.png")
    fig.savefig(stem.parent / names[-1], dpi=110)
    plt.close(fig)
    unl = unlabeled_rows(results, table, unl_rate)
    if unl:
        fig, ax = plt.subplots(figsize=(5, 4))
        stats = [mean_std(accs) for _, _, accs in unl]
        ax.errorbar([u for _, u, _ in unl], [100 * m for m, _ in stats], yerr=[100 * s for _, s in stats],
                    marker="o", capsize=3)  # fmt: skip
        ax.set_xlabel("unlabeled training samples in stage 1")
        ax.set_ylabel("Cosmo test accuracy (%)")
        ax.set_title(f"{unl_rate:g} % labels")
        ax.grid(alpha=0.3)
        fig.tight_layout()
        names.append(stem.name + "_unlabeled.png")
        fig.savefig(stem.parent / names[-1], dpi=110)
        plt.close(fig)
    return names


def write_study(results: List[Dict[str, Any]], stem: pathlib.Path, run: Dict[str, Any]) -> pathlib.Path:
    """Write ``stem``.md, ``stem``.json and the PNG plots; return the markdown path."""
    table = collect(results)
    rates = sorted({t["rate"] for t in results if t["kind"] in ("cosmo", "scratch", "cmc", "cpc")})
    ablation_rates = sorted({t["rate"] for t in results if t["kind"] in ("fixed", "views")})
    unl_rates = sorted({t["rate"] for t in results if t["kind"] == "unlabeled"})
    unl_rate = unl_rates[0] if unl_rates else (rates[0] if rates else 0.0)
    curve_rate = rates[0] if rates else 0.0
    images = plots(results, table, rates, stem, curve_rate, unl_rate) if rates else []
    qom = [(t["rate"], t["seed"], t["qom_weights"]) for t in results if t["kind"] == "cosmo"]
    unl = unlabeled_rows(results, table, unl_rate)
    train_s = sum(t.get("pretrain_s", 0.0) + sum(r["seconds"] for r in t["rows"]) for t in results)
    lines = [
        f"# Accuracy study: {run['dataset']}, {run['pair'].replace(',', ' + ')}",
        "",
        "Same split per (label rate, seed) for every method (cosmo-method.md section 7); test metrics at",
        "the **last epoch**, mean ± std (ddof = 1) over seeds (n = number of seeds). Nothing is selected",
        "on the test set. Methods: cosmo-method.md section 9.",
        "",
        "## Test accuracy (%), last epoch",
        "",
        *metric_table(table, rates, "test_accuracy"),
        "",
        "## Test macro-F1 (%), last epoch",
        "",
        *metric_table(table, rates, "test_macro_f1"),
        "",
        *[f"![{name}]({name})" for name in images[:1]],
        "",
        "## Is Cosmo ahead? (mean of per-seed differences in accuracy)",
        "",
        *verdict_lines(table, rates),
        "",
        "## Test accuracy (%) at the validation-selected epoch (uses validation labels; reference only)",
        "",
        *metric_table(table, rates, "valsel_test_accuracy"),
        "",
        "## Ablations (same seeds as the variants; 'cosmo' is the full method)",
        "",
        "With few seeds, a difference smaller than the seed-to-seed std of the main table is not evidence.",
        "",
        *ablation_table(table, ablation_rates),
        "",
        f"## Cosmo accuracy against the amount of unlabeled data ({unl_rate:g} % labels, Fig. 12)",
        "",
        "| fraction | unlabeled samples | accuracy |",
        "|---|---|---|",
        *[f"| {f:g} | {used} | {fmt(accs)} |" for f, used, accs in unl],
        "",
        *[f"![{name}]({name})" for name in images[1:]],
        "",
        "## QoM weights of the Cosmo runs (modality order as in the pair)",
        "",
        *[f"- {r:g} %, seed {s}: {', '.join(f'{w:.3f}' for w in ws)}" for r, s, ws in sorted(qom)],
        "",
        "## Wall time (one torch thread per worker)",
        "",
        *time_lines(results),
        "",
        "## Settings",
        "",
        f"- command: `python benchmarks/accuracy.py {' '.join(run['argv'])}`",
        f"- {run['workers']} worker process(es) on {run['cpus']} shared CPU(s); this invocation "
        f"{run['wall_s'] / 60:.1f} min for {run['tasks'] - run['resumed']} of {run['tasks']} tasks "
        "(the rest resumed from the task log; 0 of N: the report was rewritten from the log)",
        f"- training time summed over all {len(results)} tasks (pre-training + labeled stages, one thread "
        f"each): {train_s / 60:.1f} min",
        f"- overrides of the RunConfig defaults: `{json.dumps(run['settings'], sort_keys=True)}` (the full "
        "resolved config is in the .json)",
        "",
    ]
    md = stem.with_suffix(".md")
    md.write_text("\n".join(lines), encoding="utf-8")
    slim = [{k: v for k, v in t.items() if k != "key"} for t in results]
    stem.with_suffix(".json").write_text(json.dumps({"run": run, "tasks": slim}, indent=1) + "\n", "utf-8")
    return md

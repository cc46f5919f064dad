"""Write a benchmark's results: ``bench.json`` (everything) and ``bench.md`` (the table people read).

Results go to ``benchmarks/results/<host>-<date>/`` by default (``-quick`` appended for ``--quick``
runs, so a smoke run never overwrites a full one). The markdown leads with what the numbers depend on
(machine, model, measured peak, meter), then one row per backend; torch eager, measured in the same
run at the same batch, is the baseline of the speed-up column. Energy cells say ``n/a`` and the reason
follows the table when no meter exists: nothing is invented. Then the end-to-end section (daemon ->
subscriber) and the fine-tuning section, the paper's Table 3 beside the measured numbers.
"""

import datetime
import json
import logging
import re
import socket
from pathlib import Path
from typing import Any, Dict, List, Optional

import numpy as np

logger = logging.getLogger(__name__)

BASELINE_BACKEND = "torch"


def default_out_dir(
    base: str = "benchmarks/results", quick: bool = False, host: Optional[str] = None
) -> Path:
    """``base/<host>-<YYYY-MM-DD>[-quick]`` with the host name reduced to safe characters."""
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", host or socket.gethostname()) or "host"
    stamp = datetime.date.today().isoformat()
    return Path(base) / f"{name}-{stamp}{'-quick' if quick else ''}"


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON-serialisable: {type(value).__name__}")


def write_json(results: Dict[str, Any], path: Path) -> None:
    """Write ``results`` as indented JSON."""
    path.write_text(json.dumps(results, indent=1, default=_jsonable) + "\n", encoding="utf-8")


def _fmt(value: Optional[float], digits: int = 2) -> str:
    if value is None:
        return "n/a"
    return f"{value:.{digits}f}"


def _energy_cells(record: Dict[str, Any]) -> List[str]:
    energy = record.get("energy", {})
    if not energy.get("available"):
        return ["n/a", "n/a"]
    total = energy["channels"].get(energy.get("total_channel") or "", {})
    gross, net = total.get("gross_j_per_inference"), total.get("net_j_per_inference")
    return [_fmt(None if gross is None else gross * 1e3, 3), _fmt(None if net is None else net * 1e3, 3)]


def _header_lines(results: Dict[str, Any]) -> List[str]:
    machine, model, peaks, meter = results["machine"], results["model"], results["peaks"], results["meter"]
    flops = model["flops"]
    cpu = peaks["cpu"]
    lines = [
        f"# cosmo-edge bench: {machine['host']}{' (quick)' if results.get('quick') else ''}",
        "",
        f"- machine: {machine['cpu']}, {machine['cpu_count']} cores, {machine['machine']}, kernel "
        f"{machine['kernel']}; Python {machine['python']}, torch {machine['torch']}, onnxruntime "
        f"{machine['onnxruntime']}, TensorRT {machine['tensorrt'] or 'absent'}",
    ]
    jetson = machine.get("jetson", {})
    for key in ("nvpmodel", "jetson_clocks"):
        entry = jetson.get(key, {})
        text = (
            entry.get("output", "").replace("\n", "; ") if entry.get("available") else entry.get("reason", "")
        )
        lines.append(f"- {key}: {text}")
    lines += [
        f"- model: {model['source']}, version {model['version']}, inputs "
        + ", ".join(f"{m} {tuple(s)}" for m, s in model["input_shapes"].items()),
        f"- per window: {flops['flops_per_sample'] / 1e6:.2f} MFLOP (multiply-add = 2), weights "
        f"{flops['weight_bytes'] / 2**20:.2f} MiB, activations "
        f"{flops['activation_bytes_per_sample'] / 2**10:.0f} KiB, "
        f"intensity {flops['intensity_flops_per_byte']:.1f} FLOP/byte at batch 1",
        f"- peak (same run): matmul {cpu['size']}x{cpu['size']} {cpu['dtype']}, {cpu['threads']} thread(s): "
        f"{cpu['gflops_best']:.1f} GFLOP/s best, {cpu['gflops_median']:.1f} median"
        + (
            f"; all {peaks['cpu_all_cores']['threads']} cores: {peaks['cpu_all_cores']['gflops_best']:.1f}"
            if "cpu_all_cores" in peaks
            else ""
        )
        + f"; copy bandwidth {peaks['bandwidth']['gbytes_per_s_best']:.1f} GB/s",
    ]
    if meter.get("available"):
        idle = results["idle"]["channels"].get(meter["total_channel"], {})
        lines.append(
            f"- energy meter: {meter['meter']}, total = {meter['total_source']}; idle "
            f"{_fmt(idle.get('mean_power_w'), 3)} W over {results['idle']['duration_s']:.1f} s at "
            f"{_fmt(idle.get('rate_hz'), 1)} Hz achieved ({meter['sample_hz_asked']:g} Hz asked)"
        )
    else:
        lines.append(f"- energy meter: none ({meter.get('reason', '')}); energy is not reported")
    return lines


def markdown_report(results: Dict[str, Any]) -> str:
    """The markdown summary: header lines, the backend table, then notes (skips, gaps, estimates)."""
    lines = _header_lines(results) + [""]
    records = results["backends"]
    base_p50 = {
        r["batch_size"]: r["latency"]["p50_ms"]
        for r in records
        if r["name"] == BASELINE_BACKEND and r["status"] == "ok"
    }
    lines += [
        f"Batch 1 is the daemon's batch ({results['model'].get('daemon_batch', 1)} window per call); "
        "`name xN` rows are batch N. Load = artifact load and, for TensorRT, the engine build.",
        "",
        "| backend | load s | p50 ms | p90 ms | p99 ms | max ms | windows/s | p50 vs torch | CPU cores "
        "| GPU % | peak RSS MiB | GFLOP/s | % of peak | % of roofline | mJ/window gross | mJ/window net |",
        "|---|" + "---:|" * 15,
    ]
    notes: List[str] = []
    for record in records:
        if record["status"] != "ok":
            notes.append(f"- {record['name']}: {record['status']}: {record.get('reason', '')}")
            continue
        lat, phys = record["latency"], record["physical"]
        base = base_p50.get(record.get("batch_size", 1))
        speedup = f"{base / lat['p50_ms']:.2f}x" if base else "n/a"
        gpu = record.get("gpu_load") or {}
        frac_peak = phys.get("fraction_of_peak")
        frac_roof = phys.get("fraction_of_roofline")
        cells = [
            record.get("label", record["name"]),
            _fmt(record.get("load_s"), 2),
            _fmt(lat["p50_ms"], 3),
            _fmt(lat["p90_ms"], 3),
            _fmt(lat["p99_ms"], 3),
            _fmt(lat["max_ms"], 3),
            _fmt(lat["throughput_per_s"], 1),
            speedup,
            _fmt(lat["cpu_cores_busy"]),
            _fmt(gpu.get("mean_percent"), 0),
            _fmt(lat["peak_rss_mb"], 0),
            _fmt(phys["achieved_gflops"]),
            _fmt(None if frac_peak is None else 100 * frac_peak, 1),
            _fmt(None if frac_roof is None else 100 * frac_roof, 1),
        ] + _energy_cells(record)
        lines.append("| " + " | ".join(cells) + " |")
        label = record.get("label", record["name"])
        energy = record.get("energy", {})
        for channel, info in energy.get("channels", {}).items():
            if info.get("gaps_s"):
                notes.append(f"- {label} {channel}: {len(info['gaps_s'])} sampling gap(s) > 5 periods")
            if info.get("reason"):
                notes.append(f"- {label} {channel}: {info['reason']}")
        if "energy_estimate" in record:
            est = record["energy_estimate"]
            notes.append(
                f"- {label}: ESTIMATE {est['energy_estimate_per_inference_j'] * 1e3:.3f} "
                f"mJ/window ({est['method']})"
            )
        lat_extra = f"{lat['iterations']} calls of batch {lat['batch_size']} in {lat['wall_s']:.1f} s"
        busy = lat.get("machine_busy_percent")
        notes.append(f"- {label}: {lat_extra}; machine busy {_fmt(busy, 0)} % (all processes)")
    if results["model"]["flops"]["uncounted_modules"]:
        notes.append("- FLOPs not counted for: " + ", ".join(results["model"]["flops"]["uncounted_modules"]))
    gpu_reason = results["machine"].get("gpu_load_reason")
    if gpu_reason:
        notes.append(f"- GPU %: n/a, {gpu_reason}")
    lines += ["", "Notes:", ""] + notes if notes else []
    lines += e2e_lines(results.get("end_to_end", {}))
    lines += finetune_lines(results.get("finetune", {}))
    return "\n".join(lines) + "\n"


def _delay_cells(summary: Dict[str, Any]) -> List[str]:
    return [_fmt(summary.get(k), 1) for k in ("p50", "p90", "p99", "max")] + [str(summary.get("n", 0))]


def e2e_lines(e2e: Dict[str, Any]) -> List[str]:
    """The end-to-end section: delays from the daemon to this process's subscriber."""
    lines = ["", "## End to end: window -> subscriber", ""]
    if "skipped" in e2e or not e2e:
        return lines + [f"Skipped: {e2e.get('skipped', 'not run')}."]
    if "error" in e2e:
        return lines + [f"Failed: {e2e['error']}"]
    lines += [
        f"`cosmo-edge run` on the simulator as its own process ({e2e['script_s']:g} s script, bundled "
        f"model, engine {e2e.get('engine')}, {e2e['windows']} windows received, {e2e['lost']} lost; "
        f"daemon CPU {e2e['daemon_cpu_s']:.1f} s in {e2e['wall_s']:.1f} s wall including start-up).",
        "",
        "| delay | p50 ms | p90 ms | p99 ms | max ms | windows |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    names = {
        "newest_sample_to_receipt_ms": "newest sample -> receipt",
        "due_to_receipt_ms": "due (end + delay_s) -> receipt",
        "predict_ms": "inference in the daemon",
    }
    for key, name in names.items():
        if key in e2e:
            lines.append("| " + " | ".join([name] + _delay_cells(e2e[key])) + " |")
    lines += [
        "",
        "Newest sample -> receipt includes the daemon's deliberate `delay_s` wait for samples in flight "
        "and the hop grid; due -> receipt is the daemon's own cost (cut, inference, publish, transport).",
    ]
    return lines


def _ratio_text(value: Optional[float]) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def finetune_lines(section: Dict[str, Any]) -> List[str]:
    """The fine-tuning section: measured runs, the paper's Table 3 and both sets of Cosmo ratios."""
    lines = ["", "## Fine-tuning: one Cosmo round vs DeepSense- and AttnSense-style training", ""]
    if "skipped" in section or not section:
        return lines + [f"Skipped: {section.get('skipped', 'not run')}."]
    settings = section["settings"]["cosmo"]
    first = section["runs"][0]
    swapped = ", ".join("/".join(pair) for pair in section.get("start_model", {}).get("swapped_rows", []))
    start = f"its output rows {swapped} exchanged" if swapped else "unchanged"
    lines += [
        f"Simulator windows ({'+'.join(section['modalities'])}): pool {section['pool_windows']}, test "
        f"{section['test_windows']} (a held-out session). Cosmo = the daemon's whole round (``run_round``: "
        "store read, held-out split, iterative training, judging, checkpoint) from a starting model that "
        f"is poor on part of the classes: the model ({section.get('source_test_accuracy', float('nan')):.3f} "
        f"on test) with {start}, {section['active_test_accuracy']:.3f} on test. DeepSense "
        f"({'+'.join(section['deepsense_modalities'])}) and AttnSense from random weights, joint, "
        f"lr 0.01. All three train on the same windows (the round's training split of the labeled "
        f"ones; the round judges on the rest), {settings['epochs']} epochs, batch {settings['batch_size']}, "
        f"{settings['threads']} thread(s); times = median of {len(first['repeats'])} run(s).",
        "",
        "Time columns: *wall s* is Cosmo's whole round and the baselines' training alone; *train s* is "
        "the training step alone for every method (for Cosmo the round's own timer); energy and CPU cover "
        "the *wall s* span. Accuracy: test session before and after.",
    ]
    for modality, reason in section.get("deepsense_left_out", {}).items():
        lines += ["", f"DeepSense leaves out {modality}: {reason}."]
    lines += [
        "",
        "| labels | method | timed | labeled | trained on | wall s | train s | CPU s | gross J | net J "
        "| accuracy before | after | gain |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    energy_reason = None
    for run in section["runs"]:
        energy = run.get("energy") or {}
        if not energy.get("available"):
            energy_reason = energy.get("reason")
        cells = [
            run["rate"],
            run["method"],
            "round" if run["method"] == "cosmo" else "training",
            str(run["labeled_windows"]),
            str(run.get("train_windows", "-")),
            _fmt(run["wall_s"], 2),
            _fmt(run.get("train_s"), 2),
            _fmt(run["cpu_s"], 2),
            _fmt(energy.get("gross_j"), 1) if energy.get("available") else "unavailable",
            _fmt(energy.get("net_j"), 1) if energy.get("available") else "unavailable",
            _fmt(run.get("start_test_accuracy"), 3),
            _fmt(run["test_accuracy"], 3),
            "n/a" if run.get("gain") is None else f"{run['gain']:+.3f}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    for run in section["runs"]:
        judged = run.get("round")
        if judged:
            before, after = judged["held_out_accuracy_active"], judged["held_out_accuracy_candidate"]
            lines += [
                "",
                f"Cosmo round at {run['rate']}: promoted {judged['promoted']} of {judged['of']}; on its "
                f"{judged['held_out_windows']} held-out windows the starting model scored {before:.3f}, "
                f"the candidate {after:.3f}.",
            ]
    if energy_reason:
        lines += ["", f"Energy unavailable: {energy_reason}."]
    table = section["paper"]["table3"]
    lines += [
        "",
        f"Paper, {section['paper']['source']}:",
        "",
        "| labels | quantity | Cosmo stage 2 | DeepSense | AttnSense |",
        "|---|---|---:|---:|---:|",
    ]
    for quantity, unit in (("time_min", "time (min)"), ("energy_kj", "energy (kJ)")):
        for rate, cells in table[quantity].items():
            values = [f"{cells[m]:.2f}" for m in ("cosmo", "deepsense", "attnsense")]
            lines.append(f"| {rate} | {unit} | " + " | ".join(values) + " |")
    lines += [
        "",
        "Ratios (what transfers across hardware; *round* = Cosmo's whole round over the baselines' "
        "training, *train* = Cosmo's training step alone over the same):",
        "",
        "| labels | ratio | time, paper | time (round), here | time (train), here | energy, paper "
        "| energy (round), here |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for rate, row in section["comparison"].items():
        for key in ("cosmo/deepsense", "cosmo/attnsense"):
            cells = [
                _ratio_text((row.get("paper_ratios_time") or {}).get(key)),
                _ratio_text(row["ratios_time"].get(key)),
                _ratio_text((row.get("ratios_train_time") or {}).get(key)),
                _ratio_text((row.get("paper_ratios_energy") or {}).get(key)),
                _ratio_text(row["ratios_energy"].get(key)),
            ]
            lines.append(f"| {rate} | {key} | " + " | ".join(cells) + " |")
    lines += ["", f"Caveat: {section['caveat']}"]
    return lines


def write_report(results: Dict[str, Any], out_dir: Path) -> Dict[str, Path]:
    """Write ``bench.json`` and ``bench.md`` into ``out_dir`` (created); return their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"json": out_dir / "bench.json", "markdown": out_dir / "bench.md"}
    write_json(results, paths["json"])
    paths["markdown"].write_text(markdown_report(results), encoding="utf-8")
    return paths

"""The soak's outputs: a plot of memory and latency over time and the markdown report (``soak.py``).

Kept apart from the sampling so ``soak.py`` holds only what runs and measures the daemon.
"""

import pathlib
from typing import Any, Dict, List


def plot(samples: List[Dict[str, Any]], path: pathlib.Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = [s["t_s"] / 60.0 for s in samples]
    fig, axes = plt.subplots(3, 1, figsize=(8, 8), sharex=True)
    axes[0].plot(t, [s["rss_mib"] for s in samples], label="RSS")
    axes[0].set_ylabel("daemon RSS (MiB)")
    axes[0].legend(loc="lower right")
    for key, style in (("p50", "-"), ("p99", "--")):
        axes[1].plot(t, [s["predict_ms"][key] for s in samples], style, label=f"predict {key}")
        axes[1].plot(t, [s["e2e_ms"][key] for s in samples], style, label=f"due -> subscriber {key}")
    axes[1].set_ylabel("latency (ms)")
    axes[1].legend(loc="upper right", fontsize="small")
    axes[2].plot(t, [s["windows_per_s"] for s in samples], label="windows/s received")
    axes[2].plot(t, [s["drops_total"] for s in samples], label="ring drops (total)")
    axes[2].plot(t, [s["frames_lost_total"] for s in samples], label="frames lost (total)")
    axes[2].plot(t, [s["frames_bad_total"] for s in samples], label="bad frames (total)")
    axes[2].set_ylabel("count")
    axes[2].set_xlabel("minutes since the first window")
    axes[2].legend(loc="upper left", fontsize="small")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(str(path), dpi=100)
    plt.close(fig)


def write_markdown(result: Dict[str, Any], path: pathlib.Path, png_name: str) -> None:
    s, v, run = result["summary"], result["verdict"], result["run"]
    status = {True: "PASS", False: "FAIL", None: "not judged (second half under 2 minutes)"}[v["passed"]]
    lines = [
        "# Soak (`benchmarks/soak.py`)",
        "",
        f"Machine: {run['machine']}; load average at start {run['load_at_start']} (shared machine).",
        f"The daemon (`cosmo-edge run`, backend {s['backend']}) on the bundled simulator at "
        f"{run['speed']:g}x real time for {run['duration_s']:.0f} s "
        f"({run['duration_s'] * run['speed'] / 60:.0f} simulated minutes), sampled every "
        f"{run['sample_s']:g} s from outside the process.",
        "",
        f"**Memory verdict: {status}.** RSS slope over the second half ({v['second_half_s']:.0f} s): "
        f"{v['slope_mib_per_min']} MiB/min, bound {v['bound_mib_per_min']} MiB/min.",
        "",
        "| quantity | value |",
        "|---|---|",
        f"| RSS first / last / max sample (MiB) | {s['rss_first_mib']} / {s['rss_last_mib']} / "
        f"{s['rss_max_mib']} |",
        f"| windows received, per second | {s['windows_received']}, {s['windows_per_s']} |",
        f"| seq gaps at the subscriber | {s['seq_gaps']} |",
        f"| predict latency p50 / p95 / p99 (ms) | {s['predict_ms']['p50']} / {s['predict_ms']['p95']} / "
        f"{s['predict_ms']['p99']} |",
        f"| due -> subscriber p50 / p95 / p99 (ms) | {s['e2e_ms']['p50']} / {s['e2e_ms']['p95']} / "
        f"{s['e2e_ms']['p99']} |",
        f"| ring drops (samples, all streams) | {s['drops_total']} |",
        f"| bad frames (all streams) | {s['frames_bad_total']} |",
        f"| masked modalities (window x modality) | {s['modality_missing_total']} of "
        f"{s['windows_total']:.0f} windows cut |",
        f"| masked by modality and reason | {s['missing_by_reason'] or 'none'} |",
        f"| ring drops by stream | {s['drops_by_stream'] or 'none'} |",
        f"| frames lost before the driver (frame-number gaps) | {s['frames_lost_total']:.0f}: "
        f"{s['frames_lost_by_stream'] or 'none'} |",
        f"| publisher queue drops | {s['publish_dropped_total']} |",
        f"| daemon CPU (% of one core, mean) | {s['cpu_percent_mean']} |",
        f"| daemon exit status after SIGTERM | {s['exit_status']} |",
        "",
        "Per-minute view (the last sample of each minute; latency columns are that sample's interval):",
        "",
        "| minute | RSS MiB | CPU % | windows/s | predict p99 ms | e2e p99 ms | ring drops | frames lost "
        "| bad frames |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    by_minute: Dict[int, Dict[str, Any]] = {}
    for sample in result["samples"]:
        by_minute[int(sample["t_s"] // 60)] = sample
    for minute, x in sorted(by_minute.items()):
        lines.append(
            f"| {minute} | {x['rss_mib']} | {x['cpu_percent']} | {x['windows_per_s']} "
            f"| {x['predict_ms']['p99']} | {x['e2e_ms']['p99']} | {x['drops_total']:.0f} "
            f"| {x['frames_lost_total']:.0f} | {x['frames_bad_total']:.0f} |"
        )
    lines += [
        "",
        f"![memory and latency over time]({png_name})",
        "",
        "RSS is the whole daemon process, which here also runs the simulator (pyrealsense2's software",
        "device cannot cross processes) and renders its depth frames. The end-to-end latency runs from",
        "the moment a window is due (its end plus `window.delay_s`) to its arrival at the subscriber.",
        "Frames lost are frame-number gaps seen by the drivers. The simulator renders its depth frames",
        "inside the daemon's own process (300 per second at 10x); where the machine cannot keep up, the",
        "depth reader falls behind, the software camera's queue drops frames (frames lost) and frames",
        "that arrive after their window was cut count as ring drops, so depth is masked (`too_few` or",
        "`stale`). That is the load of the test rig, not of a real camera, which renders nothing; the",
        "soak watches that the losses do not grow memory or latency.",
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")

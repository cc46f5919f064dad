"""One benchmark run: idle baseline, machine peak, model FLOPs, then latency and energy per backend.

Order (one energy sampler runs throughout, so every phase is cut from the same trace):

1. probe the energy meter and start the sampler;
2. idle baseline (only with a real meter): nothing runs for ``idle_s`` seconds (>= 10 s in a full
   run); its mean power per channel is P_idle;
3. this machine's peak: a large matmul at the inference thread count and at every core, plus a copy
   for memory bandwidth (the roofline);
4. FLOPs and bytes per window of the model (``cosmo_edge.flops``);
5. per backend: load (for TensorRT this includes the engine build: the cache starts empty), warm
   up, then ``measure_latency`` on the backend's ``predict`` at batch 1 (what the daemon runs: one
   window per call) and at ``batch_size`` when that is larger; the loop's monotonic start and end
   cut its energy from the trace; gross and net J per window;
6. end to end (``cosmo_edge.bench.e2e``): the daemon as a subprocess on the simulator, this process
   subscribed; newest sample -> receipt per window;
7. fine-tuning (``cosmo_edge.bench.finetune``): one whole Cosmo round (the daemon's ``run_round``,
   from a model poor on part of the classes) beside DeepSense- and AttnSense-style training of the
   same windows at 1 % and 2 % labels; each run's energy (the whole round for Cosmo, the training
   for the baselines) is cut from the same trace, idle subtracted.

A backend that cannot run here is recorded as skipped with the reason, never silently dropped.
"""

import logging
import os
import tempfile
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

import numpy as np

from cosmo_edge.bench.latency import measure_latency
from cosmo_edge.energy import MeterOptions, Sampler, SamplerError, idle_power_w, per_inference, probe_meter
from cosmo_edge.energy.integrate import Trace, window_energy
from cosmo_edge.energy.none import tdp_estimate

logger = logging.getLogger(__name__)

SCHEMA = "cosmo-edge-bench/2"
DAEMON_BATCH = 1  # the daemon classifies one window per call (cosmo_edge.daemon.predictor)
CDF_POINTS = 200
FULL_RUN_MIN_IDLE_S = 10.0


@dataclass
class BenchConfig:
    """Settings of one run; durations in seconds."""

    backends: List[str] = field(default_factory=lambda: ["torch", "onnxruntime", "tensorrt"])
    modalities: List[str] = field(default_factory=lambda: ["imu", "skeleton"])
    checkpoint: Optional[str] = None
    batch_size: int = 1
    duration_s: float = 20.0
    max_iterations: Optional[int] = None
    warmup: int = 20
    threads: int = 1
    idle_s: float = 10.0
    meter: str = "auto"
    meter_options: MeterOptions = field(default_factory=MeterOptions)
    sample_hz: float = 50.0
    peak_size: int = 2048
    peak_time_s: float = 1.0
    bandwidth_mb: int = 256
    estimate_tdp_w: Optional[float] = None
    quick: bool = False
    progress: bool = True
    e2e_seconds: Optional[float] = None  # None: no end-to-end section
    e2e_backend: str = "auto"
    e2e_model: Optional[str] = None  # None: the bundled simulator model
    finetune: Optional[Any] = None  # a FinetuneBenchConfig; None: no fine-tuning section


@dataclass
class BenchOutcome:
    """The JSON-able results, the raw latencies (seconds) per backend and end-to-end delays (ms)."""

    results: Dict[str, Any]
    latencies_s: Dict[str, np.ndarray]
    e2e_ms: Dict[str, List[float]] = field(default_factory=dict)


class _Progress:
    """A tqdm bar that fills with elapsed seconds; inert when progress is off."""

    def __init__(self, enabled: bool, desc: str, total_s: float) -> None:
        self._bar = None
        if enabled:
            from tqdm import tqdm

            self._bar = tqdm(
                total=round(total_s, 1),
                desc=desc,
                unit="s",
                leave=False,
                bar_format="{l_bar}{bar}| {n:.1f}/{total:.1f} s{postfix}",
            )

    def __call__(self, elapsed_s: float, iterations: int) -> None:
        if self._bar is not None:
            self._bar.n = min(round(elapsed_s, 1), self._bar.total)
            self._bar.set_postfix_str(f"{iterations} calls" if iterations else "", refresh=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def _idle(cfg: BenchConfig) -> Dict[str, int]:
    """Sleep ``idle_s`` seconds; return the monotonic window."""
    bar = _Progress(cfg.progress, "idle baseline", cfg.idle_s)
    t0 = time.monotonic_ns()
    deadline = time.monotonic() + cfg.idle_s
    while time.monotonic() < deadline:
        time.sleep(min(0.1, max(0.0, deadline - time.monotonic())))
        bar((time.monotonic_ns() - t0) / 1e9, 0)
    bar.close()
    return {"t0_ns": t0, "t1_ns": time.monotonic_ns()}


def _peaks(cfg: BenchConfig) -> Dict[str, Any]:
    """Matmul peak at the inference thread count and at every core, copy bandwidth, CUDA when present."""
    import torch

    from cosmo_edge.flops import measure_bandwidth, measure_peak_flops

    peaks: Dict[str, Any] = {}
    t0 = time.monotonic_ns()
    peaks["cpu"] = measure_peak_flops(cfg.peak_size, min_time_s=cfg.peak_time_s, threads=cfg.threads)
    peaks["cpu"]["window_ns"] = [t0, time.monotonic_ns()]
    cores = os.cpu_count() or 1
    if cores != cfg.threads:
        peaks["cpu_all_cores"] = measure_peak_flops(cfg.peak_size, min_time_s=cfg.peak_time_s, threads=cores)
    peaks["bandwidth"] = measure_bandwidth(
        cfg.bandwidth_mb, min_time_s=cfg.peak_time_s / 2, threads=cfg.threads
    )
    if torch.cuda.is_available():
        peaks["cuda_fp32"] = measure_peak_flops(cfg.peak_size * 2, device="cuda", min_time_s=cfg.peak_time_s)
        peaks["cuda_fp16"] = measure_peak_flops(
            cfg.peak_size * 2, dtype=torch.float16, device="cuda", min_time_s=cfg.peak_time_s
        )
    return peaks


def _physical(
    name: str, summary: Dict[str, Any], flops: Any, peaks: Dict[str, Any], batch: int
) -> Dict[str, Any]:
    """Achieved GFLOP/s against the measured peak and the roofline bound for this backend's device."""
    from cosmo_edge.flops import roofline_gflops

    peak_key = "cuda_fp16" if name == "tensorrt" else "cpu"
    achieved = flops.flops_per_sample * summary["throughput_per_s"] / 1e9
    result: Dict[str, Any] = {"achieved_gflops": achieved, "peak_key": peak_key}
    if peak_key not in peaks:
        result["reason"] = f"no {peak_key} peak measured on this machine"
        return result
    peak = peaks[peak_key]["gflops_best"]
    bytes_per_sample = (
        flops.weight_bytes / batch + flops.activation_bytes_per_sample + flops.input_bytes_per_sample
    )
    intensity = flops.flops_per_sample / bytes_per_sample
    result.update(
        {"peak_gflops": peak, "fraction_of_peak": achieved / peak, "intensity_flops_per_byte": intensity}
    )
    if peak_key == "cpu":
        bound = roofline_gflops(intensity, peak, peaks["bandwidth"]["gbytes_per_s_best"])
        result.update({"roofline_gflops": bound, "fraction_of_roofline": achieved / bound})
    return result


def _energy(
    trace: Optional[Trace], meter: Any, window_ns: List[int], samples: int, idle: Dict[str, Any]
) -> Dict[str, Any]:
    """Per-channel gross/net J per window, or why there is none."""
    if not meter.available or trace is None:
        return {"available": False, "reason": meter.reason or "no trace"}
    t0_s, t1_s = window_ns[0] / 1e9, window_ns[1] / 1e9
    channels = {}
    for channel in trace.values:
        idle_w = idle[channel].mean_power_w if channel in idle else None
        channels[channel] = per_inference(window_energy(trace, channel, t0_s, t1_s), samples, idle_w)
    return {"available": True, "total_channel": trace.total_channel, "channels": channels}


def _peak_power(trace: Trace, window_ns: List[int], idle: Dict[str, Any], gflops: float) -> Dict[str, Any]:
    """Mean and net (minus idle) power on the total channel while the peak matmul ran, and GFLOP/J."""
    channel = str(trace.total_channel)
    window = window_energy(trace, channel, window_ns[0] / 1e9, window_ns[1] / 1e9)
    result: Dict[str, Any] = {"channel": channel, "mean_power_w": window.mean_power_w}
    idle_w = idle[channel].mean_power_w if channel in idle else None
    if window.mean_power_w is not None and idle_w is not None:
        net_w = window.mean_power_w - idle_w
        result.update({"net_power_w": net_w, "gflops_per_joule_net": gflops / net_w if net_w > 0 else None})
    return result


def batch_sizes(requested: int) -> List[int]:
    """Batch sizes to time: 1, the daemon's batch and ``requested`` (each once, ascending)."""
    return sorted({1, DAEMON_BATCH, int(requested)})


def record_label(name: str, batch_size: int) -> str:
    """``torch`` at batch 1, ``torch x8`` at batch 8: the key of a backend record and its latencies."""
    return name if batch_size == 1 else f"{name} x{batch_size}"


def _run_backend(
    name: str, artifact: Any, cfg: BenchConfig, cache_dir: str, sampler: Sampler, gpu_load: Any
) -> List[Dict[str, Any]]:
    """Load, warm up and time one backend at every batch size; one record each (or one skip/failure)."""
    from cosmo_edge.bench.gpu import GpuLoadSampler
    from cosmo_edge.runtime import BackendError, BackendUnavailable, create_backend

    sizes = batch_sizes(cfg.batch_size)
    record: Dict[str, Any] = {"name": name, "label": name, "batch_size": sizes[0]}
    try:
        backend = create_backend(name, threads=cfg.threads, cache_dir=cache_dir)
        started = time.perf_counter()
        backend.load(artifact)
        record["load_s"] = time.perf_counter() - started
        record["warmup_ms"] = backend.warmup(iterations=3, batch_size=sizes[-1]) * 1e3
    except BackendUnavailable as exc:
        logger.info("bench: backend %s skipped: %s", name, exc)
        return [{**record, "status": "skipped", "reason": str(exc)}]
    except BackendError as exc:
        logger.error("bench: backend %s failed: %s", name, exc)
        return [{**record, "status": "failed", "reason": str(exc)}]
    records = []
    for batch_size in sizes:
        label = record_label(name, batch_size)
        entry = dict(record, label=label, batch_size=batch_size)
        batch = artifact.example_batch(batch_size, seed=1)
        bar = _Progress(cfg.progress, f"latency {label}", cfg.duration_s)
        gpu = GpuLoadSampler(gpu_load)
        gpu.start()
        result = measure_latency(
            backend.predict,
            batch,
            batch_size=batch_size,
            duration_s=cfg.duration_s,
            max_iterations=cfg.max_iterations,
            warmup=cfg.warmup,
            progress=bar,
        )
        entry["gpu_load"] = gpu.stop()
        bar.close()
        try:
            sampler.wait_past(result.t_end_ns)
        except SamplerError as exc:
            entry["sampler_error"] = str(exc)
        entry.update(
            {"status": "ok", "latency": result.summary(), "window_ns": [result.t_start_ns, result.t_end_ns]}
        )
        entry["_latencies_s"] = result.latencies_s
        records.append(entry)
    return records


def _run_energy(trace: Optional[Trace], meter: Any, idle: Dict[str, Any], window_ns: List[int]) -> Dict:
    """Gross and net (idle subtracted) joules on the total channel over one window, or why not."""
    if not meter.available or trace is None:
        return {"available": False, "reason": meter.reason or "no trace"}
    channel = trace.total_channel
    if channel is None:
        return {"available": False, "reason": f"meter {meter.name} has no total channel"}
    window = window_energy(trace, channel, window_ns[0] / 1e9, window_ns[1] / 1e9)
    idle_w = idle[channel].mean_power_w if channel in idle else None
    net = per_inference(window, 1, idle_w).get("net_energy_j") if window.energy_j is not None else None
    result = {
        "available": window.energy_j is not None,
        "channel": channel,
        "duration_s": window.duration_s,
        "gross_j": window.energy_j,
        "net_j": net,
        "mean_power_w": window.mean_power_w,
        "idle_power_w": idle_w,
    }
    if window.reason:
        result["reason"] = window.reason
    return result


def _e2e(cfg: BenchConfig, work_dir: str) -> Dict[str, Any]:
    """The end-to-end section (``cosmo_edge.bench.e2e``) with a progress bar over the script time."""
    from pathlib import Path

    from cosmo_edge.bench.e2e import run_daemon_e2e
    from cosmo_edge.bundled import SIM_MODEL

    assert cfg.e2e_seconds is not None
    model = Path(cfg.e2e_model) if cfg.e2e_model else SIM_MODEL
    bar = _Progress(cfg.progress, "end to end (daemon)", cfg.e2e_seconds)
    done = threading.Event()

    def tick() -> None:
        t0 = time.monotonic()
        while not done.wait(0.2):
            bar(time.monotonic() - t0, 0)

    ticker = threading.Thread(target=tick, name="e2e-progress", daemon=True)
    ticker.start()
    try:
        result = run_daemon_e2e(model, Path(work_dir) / "e2e", cfg.e2e_seconds, backend=cfg.e2e_backend)
    finally:
        done.set()
        ticker.join(1)
        bar.close()
    result["model"] = str(model)
    return result


def run_bench(cfg: BenchConfig) -> BenchOutcome:
    """Run every phase (see the module docstring) and return the results."""
    import torch

    from cosmo_edge.bench.context import build_artifact, machine_info
    from cosmo_edge.bench.gpu import probe_gpu_load
    from cosmo_edge.flops import count_flops

    torch.set_num_threads(cfg.threads)
    results: Dict[str, Any] = {"schema": SCHEMA, "created_unix_s": time.time(), "quick": cfg.quick}
    results["machine"] = machine_info()
    gpu_read, gpu_source, gpu_reason = probe_gpu_load(cfg.meter_options.sysfs_root)
    results["machine"]["gpu_load_source"] = gpu_source
    if gpu_reason:
        results["machine"]["gpu_load_reason"] = gpu_reason
    meter = probe_meter(cfg.meter, cfg.meter_options)
    sampler = Sampler(meter, 1.0 / cfg.sample_hz)
    records: List[Dict[str, Any]] = []
    e2e: Optional[Dict[str, Any]] = None
    finetune: Optional[Dict[str, Any]] = None
    try:
        sampler.start()
        if meter.available:
            if not cfg.quick and cfg.idle_s < FULL_RUN_MIN_IDLE_S:
                logger.warning(
                    "idle baseline %.1f s is shorter than the %.0f s a full run needs",
                    cfg.idle_s,
                    FULL_RUN_MIN_IDLE_S,
                )
            idle_window = _idle(cfg)
        else:  # nothing to subtract from: no meter, no baseline
            idle_window = {"t0_ns": 0, "t1_ns": 0}
        peaks = _peaks(cfg)
        artifact, model_source = build_artifact(cfg.checkpoint, cfg.modalities)
        flops = count_flops(artifact.probability_module(), *artifact.example_tensors(1))
        with tempfile.TemporaryDirectory(prefix="cosmo-edge-bench-") as work_dir:
            for name in cfg.backends:
                records.extend(_run_backend(name, artifact, cfg, work_dir, sampler, gpu_read))
            if cfg.e2e_seconds is not None:
                e2e = _e2e(cfg, work_dir)
        if cfg.finetune is not None:
            from cosmo_edge.bench.finetune import run_finetune_section

            finetune = run_finetune_section(cfg.finetune)
            torch.set_num_threads(cfg.threads)  # a round sets its own thread count
            try:
                sampler.wait_past(time.monotonic_ns())
            except SamplerError as exc:
                finetune["sampler_error"] = str(exc)
    finally:
        sampler.stop()
        meter.close()
    trace = sampler.trace() if meter.available else None
    idle: Dict[str, Any] = {}
    if trace is not None:
        idle = idle_power_w(trace, idle_window["t0_ns"] / 1e9, idle_window["t1_ns"] / 1e9)
    results["meter"] = {**meter.describe(), "sampler": sampler.stats(), "sample_hz_asked": cfg.sample_hz}
    if sampler.error is not None:
        results["meter"]["error"] = str(sampler.error)
    results["idle"] = {
        "duration_s": (idle_window["t1_ns"] - idle_window["t0_ns"]) / 1e9,
        "channels": {c: w.to_dict() for c, w in idle.items()},
    }
    window_ns = peaks["cpu"].pop("window_ns")
    if trace is not None and trace.total_channel is not None:
        peaks["cpu"]["power"] = _peak_power(trace, window_ns, idle, peaks["cpu"]["gflops_median"])
    results["peaks"] = peaks
    results["model"] = {
        "source": model_source,
        "version": artifact.version,
        "modalities": artifact.modalities,
        "input_shapes": {m: list(s) for m, s in artifact.input_shapes.items()},
        "flops": flops.to_dict(depth=3),
        "daemon_batch": DAEMON_BATCH,
    }
    latencies: Dict[str, np.ndarray] = {}
    for record in records:
        if record["status"] != "ok":
            continue
        latencies[record["label"]] = record.pop("_latencies_s")
        summary = record["latency"]
        record["physical"] = _physical(record["name"], summary, flops, peaks, record["batch_size"])
        samples = summary["iterations"] * record["batch_size"]
        record["energy"] = _energy(trace, meter, record["window_ns"], samples, idle)
        if cfg.estimate_tdp_w:
            record["energy_estimate"] = tdp_estimate(cfg.estimate_tdp_w, summary["wall_s"], samples)
        ordered = np.sort(latencies[record["label"]]) * 1e3
        q = np.linspace(0.0, 1.0, CDF_POINTS)
        record["latency_cdf_ms"] = [round(float(v), 4) for v in np.quantile(ordered, q)]
    results["backends"] = records
    e2e_raw_ms: Dict[str, List[float]] = {}
    if e2e is not None:
        e2e_raw_ms = e2e.pop("_raw_ms", {})
    results["end_to_end"] = e2e if e2e is not None else {"skipped": "not asked (--skip-e2e)"}
    if finetune is not None:
        from cosmo_edge.bench.finetune import attach_energy

        attach_energy(finetune, lambda w: _run_energy(trace, meter, idle, w))
        results["finetune"] = finetune
    else:
        results["finetune"] = {"skipped": "not asked (--skip-finetune)"}
    return BenchOutcome(results, latencies, e2e_raw_ms)

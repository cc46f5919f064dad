"""Benchmark building blocks behind ``cosmo-edge bench``: latency timing, the run's phases, reports, plots.

``measure_latency(predict, batch, ...)`` times any callable; ``run_bench(BenchConfig)`` runs the idle
baseline, the machine's peak, the model's FLOPs and every backend with the energy sampler running,
then the end-to-end daemon run (``e2e``) and the fine-tuning comparison (``finetune``).
"""

from cosmo_edge.bench.latency import LatencyResult, measure_latency

__all__ = ["LatencyResult", "measure_latency"]

"""Inference and end-to-end latency, FLOPs against the measured peak, energy, and fine-tuning cost.

Usage: ``python benchmarks/bench.py [--quick] [--model CKPT] [--backends torch,onnxruntime,tensorrt]
[--skip-e2e] [--skip-finetune]`` (the same as ``cosmo-edge bench``; ``--help`` lists every option).
Writes ``bench.md``, ``bench.json``, ``latency_cdf.png``, ``energy.png``, ``e2e_cdf.png`` and
``finetune.png`` under ``benchmarks/results/<host>-<date>/``. The baselines, measured in the same
run, are torch eager (speed-up column), a large matmul (the machine's peak: achieved fraction of peak
and of the roofline) and, for fine-tuning, DeepSense- and AttnSense-style training of the same
labeled windows, printed beside the paper's Table 3.
"""

import sys

from cosmo_edge.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench"] + sys.argv[1:]))

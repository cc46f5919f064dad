"""Inference latency, FLOPs against this machine's measured peak, and energy per window.

Usage: ``python benchmarks/bench.py [--quick] [--model CKPT] [--backends torch,onnxruntime,tensorrt]``
(the same as ``cosmo-edge bench``; ``--help`` lists every option). Writes ``bench.md``,
``bench.json``, ``latency_cdf.png`` and ``energy.png`` under ``benchmarks/results/<host>-<date>/``.
The baselines, measured in the same run, are torch eager (speed-up column) and a large matmul
(the machine's peak: achieved fraction of peak and of the roofline).
"""

import sys

from cosmo_edge.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench"] + sys.argv[1:]))

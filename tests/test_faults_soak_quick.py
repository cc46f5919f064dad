"""``benchmarks/soak.py --quick``: a short soak writes its time series, report and plot."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("zmq")
pytest.importorskip("pyrealsense2")
pytest.importorskip("matplotlib")

REPO = Path(__file__).resolve().parent.parent


def test_quick_soak_samples_memory_windows_and_latency(tmp_path):
    """Expected: exit 0, a sample every 2 s with the daemon's RSS, windows at about 20/s (10x a 0.5 s
    hop), predict latency percentiles, no ``seq`` gap; the memory verdict says a 10 s run is too short
    to judge; soak_quick.{json,md,png} are written to ``--out``."""
    command = [sys.executable, "benchmarks/soak.py", "--quick", "--duration-s", "10", "--out", str(tmp_path)]
    out = subprocess.run(command, cwd=str(REPO), capture_output=True, text=True, timeout=240)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    result = json.loads((tmp_path / "soak_quick.json").read_text(encoding="utf-8"))
    samples = result["samples"]
    assert len(samples) >= 4
    assert all(s["rss_mib"] > 50 for s in samples)
    assert [s["t_s"] for s in samples] == sorted(s["t_s"] for s in samples)
    summary = result["summary"]
    assert summary["exit_status"] == 0
    assert 10 <= summary["windows_per_s"] <= 25
    assert summary["seq_gaps"] == 0
    assert 0 < summary["predict_ms"]["p50"] <= summary["predict_ms"]["p99"]
    assert summary["e2e_ms"]["p50"] >= 0
    assert result["verdict"]["judged"] is False and result["verdict"]["passed"] is None
    assert "Memory verdict: not judged" in (tmp_path / "soak_quick.md").read_text(encoding="utf-8")
    assert (tmp_path / "soak_quick.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

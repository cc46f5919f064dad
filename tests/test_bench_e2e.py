"""End-to-end helpers (script, config, delay summary), GPU load reading and the batch sizes timed."""

import time

import numpy as np
import pytest

from cosmo_edge.bench.e2e import daemon_config, delay_summary, free_endpoint, script_for
from cosmo_edge.bench.gpu import GpuLoadSampler, probe_gpu_load
from cosmo_edge.bench.suite import DAEMON_BATCH, batch_sizes, record_label


def test_script_splits_the_seconds_over_the_activities() -> None:
    script = script_for(12.0, ("walk", "wave", "sit"))
    assert script == "walk:4.00,wave:4.00,sit:4.00"
    with pytest.raises(ValueError):
        script_for(0.0)


def test_daemon_config_points_the_bundled_config_at_this_run(tmp_path) -> None:
    endpoint = free_endpoint()
    assert endpoint.startswith("tcp://127.0.0.1:") and int(endpoint.rsplit(":", 1)[1]) > 0
    config = daemon_config(tmp_path / "m.pt", endpoint, "walk:3", str(tmp_path / "state"))
    assert config["publish"]["endpoint"] == endpoint
    assert config["model"]["path"] == str(tmp_path / "m.pt")
    assert config["simulator"]["script"] == "walk:3" and config["simulator"]["ground_truth_file"] is None
    assert config["state_dir"] == str(tmp_path / "state")


def test_delay_summary_percentiles() -> None:
    values = np.arange(1.0, 101.0)
    summary = delay_summary(values)
    assert summary["n"] == 100 and summary["max"] == 100.0
    assert summary["p50"] == pytest.approx(np.percentile(values, 50), abs=1e-3)
    assert summary["p99"] == pytest.approx(np.percentile(values, 99), abs=1e-3)
    assert summary["p50"] <= summary["p90"] <= summary["p99"] <= summary["max"]
    assert delay_summary([]) == {"n": 0}


def test_batch_sizes_always_include_batch_one_and_the_daemons() -> None:
    assert DAEMON_BATCH == 1
    assert batch_sizes(1) == [1]
    assert batch_sizes(8) == [1, 8]
    assert record_label("onnxruntime", 1) == "onnxruntime" and record_label("torch", 8) == "torch x8"


def test_gpu_load_from_a_jetson_load_file(tmp_path) -> None:
    load = tmp_path / "sys/devices/gpu.0/load"
    load.parent.mkdir(parents=True)
    load.write_text("537\n")
    read, source, reason = probe_gpu_load(str(tmp_path))
    assert read is not None and read() == pytest.approx(53.7) and "gpu.0" in source and not reason
    sampler = GpuLoadSampler(read, poll_s=0.01)
    sampler.start()
    time.sleep(0.05)
    load.write_text("1000\n")
    time.sleep(0.05)
    stats = sampler.stop()
    assert stats["samples"] >= 2 and stats["max_percent"] == pytest.approx(100.0)
    assert 53.7 <= stats["mean_percent"] <= 100.0


def test_no_gpu_load_file_gives_a_reason_or_nvml(tmp_path) -> None:
    read, source, reason = probe_gpu_load(str(tmp_path))
    assert (read is None and source == "none" and reason) or source == "nvml"
    assert GpuLoadSampler(None).stop() == {}

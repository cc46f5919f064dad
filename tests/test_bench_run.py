"""A tiny end-to-end benchmark: fake INA3221 rails, torch backend, report, plots and the CLI."""

import json

import pytest

from cosmo_edge.bench.report import default_out_dir, markdown_report
from cosmo_edge.bench.suite import BenchConfig, run_bench
from cosmo_edge.energy import MeterOptions
from cosmo_edge.energy.fake_sysfs import write_tx2

TINY = dict(
    modalities=["imu"],
    duration_s=0.2,
    warmup=1,
    idle_s=0.2,
    peak_size=64,
    peak_time_s=0.01,
    bandwidth_mb=1,
    progress=False,
)


def test_run_with_constant_rails_gives_consistent_energy(tmp_path) -> None:
    write_tx2(tmp_path)  # VDD_IN is a constant 1.649 W
    cfg = BenchConfig(
        backends=["torch", "no_such_backend"],
        meter="jetson_ina3221",
        meter_options=MeterOptions(sysfs_root=str(tmp_path)),
        sample_hz=100.0,
        **TINY,
    )
    outcome = run_bench(cfg)
    results = outcome.results
    assert results["meter"]["meter"] == "jetson_ina3221"
    assert results["idle"]["channels"]["VDD_IN"]["mean_power_w"] == pytest.approx(1.649)
    torch_record, unknown = results["backends"]
    assert unknown["status"] == "failed" and "unknown backend" in unknown["reason"]
    total = torch_record["energy"]["channels"]["VDD_IN"]
    n = torch_record["latency"]["iterations"]
    assert total["gross_j_per_inference"] * n == pytest.approx(1.649 * total["duration_s"], rel=1e-9)
    assert total["net_j_per_inference"] == pytest.approx(0.0, abs=1e-9)
    assert torch_record["physical"]["fraction_of_peak"] > 0
    assert set(outcome.latencies_s) == {"torch"}
    text = markdown_report(results)
    assert "| torch |" in text and "no_such_backend: failed" in text
    json.dumps(results)  # JSON-able as is


def test_cli_quick_run_writes_table_json_and_plots(tmp_path, capsys) -> None:
    """``--quick`` end to end: backend table, the daemon's end-to-end delays and the fine-tuning runs."""
    from cosmo_edge.cli import main

    out = tmp_path / "out"
    argv = ["bench", "--quick", "--backends", "torch", "--modalities", "imu", "--duration-s", "0.2"]
    argv += ["--idle-s", "0.1", "--meter", "none", "--out", str(out), "--no-progress"]
    argv += ["--e2e-seconds", "6", "--finetune-epochs", "2"]
    assert main(argv) == 0
    for name in ("bench.json", "bench.md", "latency_cdf.png", "energy.png", "e2e_cdf.png", "finetune.png"):
        assert (out / name).stat().st_size > 0
    results = json.loads((out / "bench.json").read_text())
    assert results["schema"] == "cosmo-edge-bench/2"
    assert results["meter"]["meter"] == "none" and results["meter"]["available"] is False
    assert results["backends"][0]["energy"]["available"] is False
    assert results["backends"][0]["load_s"] >= 0 and results["backends"][0]["batch_size"] == 1

    e2e = results["end_to_end"]
    assert "error" not in e2e, e2e.get("error")
    assert e2e["windows"] > 0 and e2e["engine"]
    newest = e2e["newest_sample_to_receipt_ms"]
    assert newest["n"] == e2e["windows"]
    assert 0 < newest["p50"] <= newest["p90"] <= newest["p99"] <= newest["max"]
    assert 0 < e2e["due_to_receipt_ms"]["p50"] < newest["p50"]  # the newest sample precedes the due time

    ft = results["finetune"]
    assert {(r["rate"], r["method"]) for r in ft["runs"]} == {
        (rate, method) for rate in ("1%", "2%") for method in ("cosmo", "deepsense", "attnsense")
    }
    classes = len(ft["pool_per_class"])
    # the round starts from a model that is poor on part of the classes, not from the near-perfect one
    assert ft["start_model"]["swapped_rows"] == [["wave", "clap"], ["squat", "sit"]]
    assert ft["active_test_accuracy"] < ft["source_test_accuracy"] - 0.3
    for run in ft["runs"]:
        assert run["wall_s"] > 0 and run["cpu_s"] >= 0 and run["epochs"] == 2
        assert run["labeled_windows"] >= 2 * classes and min(run["labeled_per_class"].values()) >= 2
        same_rate = [r for r in ft["runs"] if r["rate"] == run["rate"]]
        assert {r["train_windows"] for r in same_rate} == {run["train_windows"]}  # the same windows
        assert classes <= run["train_windows"] < run["labeled_windows"]  # the round held some out
        assert 0.0 <= run["start_test_accuracy"] <= 1.0 and 0.0 <= run["test_accuracy"] <= 1.0
        assert run["gain"] == pytest.approx(run["test_accuracy"] - run["start_test_accuracy"])
        assert run["energy"]["available"] is False and run["energy"]["reason"]
        if run["method"] == "cosmo":  # the whole round: more than its training step
            assert run["start_test_accuracy"] == ft["active_test_accuracy"]
            assert 0 < run["train_s"] < run["wall_s"]
            assert run["round"]["of"] == 1 and run["round"]["held_out_windows"] >= classes
            seconds = run["repeats"][0]["round"]["seconds"]
            assert seconds["train"] < seconds["total"] <= run["wall_s"]
        else:
            assert run["train_s"] == run["wall_s"]
    assert ft["comparison"]["1%"]["ratios_time"]["cosmo/deepsense"] > 0
    assert ft["comparison"]["1%"]["ratios_train_time"]["cosmo/deepsense"] > 0

    text = capsys.readouterr().out
    assert "n/a" in text and "## End to end" in text and "## Fine-tuning" in text
    for reference in ("25.93", "38.38", "62.52", "49.87", "74.42", "120.98", "21.34", "98.58"):
        assert reference in text  # the paper's Table 3 beside the measured numbers
    assert "unavailable" in text and "Caveat" in text
    assert "accuracy before" in text and "whole round" in text and "Cosmo round at 1%" in text


def test_cli_skip_flags_leave_the_sections_out(tmp_path) -> None:
    from cosmo_edge.cli import main

    out = tmp_path / "out"
    argv = ["bench", "--quick", "--backends", "torch", "--modalities", "imu", "--duration-s", "0.1"]
    argv += ["--meter", "none", "--out", str(out), "--no-progress", "--no-plots", "--batch-size", "4"]
    argv += ["--skip-e2e", "--skip-finetune"]
    assert main(argv) == 0
    results = json.loads((out / "bench.json").read_text())
    assert "skipped" in results["end_to_end"] and "skipped" in results["finetune"]
    assert [(r["label"], r["batch_size"]) for r in results["backends"]] == [("torch", 1), ("torch x4", 4)]
    assert "Skipped" in (out / "bench.md").read_text()


def test_default_out_dir_names_host_and_date() -> None:
    path = default_out_dir("benchmarks/results", quick=True, host="jetson tx2/a")
    assert path.parent.as_posix() == "benchmarks/results"
    assert path.name.startswith("jetson_tx2_a-") and path.name.endswith("-quick")

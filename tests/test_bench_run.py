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
    from cosmo_edge.cli import main

    out = tmp_path / "out"
    argv = ["bench", "--quick", "--backends", "torch", "--modalities", "imu", "--duration-s", "0.2"]
    argv += ["--idle-s", "0.1", "--meter", "none", "--out", str(out), "--no-progress"]
    assert main(argv) == 0
    for name in ("bench.json", "bench.md", "latency_cdf.png", "energy.png"):
        assert (out / name).stat().st_size > 0
    results = json.loads((out / "bench.json").read_text())
    assert results["meter"]["meter"] == "none" and results["meter"]["available"] is False
    assert results["backends"][0]["energy"]["available"] is False
    assert "n/a" in capsys.readouterr().out


def test_default_out_dir_names_host_and_date() -> None:
    path = default_out_dir("benchmarks/results", quick=True, host="jetson tx2/a")
    assert path.parent.as_posix() == "benchmarks/results"
    assert path.name.startswith("jetson_tx2_a-") and path.name.endswith("-quick")

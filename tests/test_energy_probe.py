"""Meter probing order (jetson_ina3221, tegrastats, rapl, none) and the none meter's honesty."""

import stat
import sys

import pytest

from cosmo_edge.energy import METER_ORDER, MeterError, MeterOptions, MeterUnavailable, probe_meter
from cosmo_edge.energy.fake_sysfs import write_rapl, write_tx2
from cosmo_edge.energy.none import tdp_estimate


def _options(root, tegrastats: str = "") -> MeterOptions:
    cmd = tegrastats or str(root / "no-tegrastats-here")
    return MeterOptions(
        sysfs_root=str(root), tegrastats_cmd=cmd, tegrastats_interval_ms=20, probe_timeout_s=20.0
    )


def _fake_tegrastats(tmp_path) -> str:
    script = tmp_path / "tegrastats"
    body = "import time\nwhile True:\n    print('VDD_IN 1000/1000', flush=True)\n    time.sleep(0.02)\n"
    script.write_text(f"#!{sys.executable}\n{body}")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return str(script)


def test_documented_order() -> None:
    assert METER_ORDER == ("jetson_ina3221", "tegrastats", "rapl", "none")


def test_ina3221_wins_over_everything(tmp_path) -> None:
    write_tx2(tmp_path)
    write_rapl(tmp_path, [("intel-rapl:0", "package-0", 0, None)])
    with probe_meter("auto", _options(tmp_path, _fake_tegrastats(tmp_path))) as meter:
        assert meter.name == "jetson_ina3221"


def test_tegrastats_wins_over_rapl(tmp_path) -> None:
    write_rapl(tmp_path, [("intel-rapl:0", "package-0", 0, None)])
    with probe_meter("auto", _options(tmp_path, _fake_tegrastats(tmp_path))) as meter:
        assert meter.name == "tegrastats"


def test_rapl_when_it_is_the_only_counter(tmp_path) -> None:
    write_rapl(tmp_path, [("intel-rapl:0", "package-0", 0, None)])
    with probe_meter("auto", _options(tmp_path)) as meter:
        assert meter.name == "rapl"


def test_none_reports_unavailable_with_every_reason_and_no_number(tmp_path) -> None:
    with probe_meter("auto", _options(tmp_path)) as meter:
        assert meter.name == "none"
        assert not meter.available
        assert meter.poll() == []
        info = meter.describe()
    assert info["available"] is False
    for candidate in ("jetson_ina3221", "tegrastats", "rapl"):
        assert candidate in info["reason"]
    assert not any("energy" in key or "power" in key for key in info)


def test_named_meter_that_cannot_run_raises(tmp_path) -> None:
    with pytest.raises(MeterUnavailable):
        probe_meter("rapl", _options(tmp_path))
    with pytest.raises(MeterError, match="unknown meter"):
        probe_meter("joulescope", _options(tmp_path))


def test_tdp_estimate_is_labelled_as_an_estimate() -> None:
    est = tdp_estimate(tdp_w=15.0, duration_s=10.0, inferences=100)
    assert est["energy_estimate_j"] == pytest.approx(75.0)
    assert est["energy_estimate_per_inference_j"] == pytest.approx(0.75)
    assert "estimate" in est["method"]
    with pytest.raises(ValueError):
        tdp_estimate(0.0, 1.0, 1)

"""tegrastats output parsing (JetPack 4 unitless and JetPack 5 mW forms) and the streaming meter."""

import stat
import sys
import time

import pytest

from cosmo_edge.energy import MeterOptions, MeterUnavailable
from cosmo_edge.energy.tegrastats import TegrastatsMeter, parse_tegrastats_line

TX2_JP4 = (
    "RAM 2183/7852MB (lfb 1174x4MB) SWAP 0/3926MB (cached 0MB) CPU [2%@345,off,off,1%@345,0%@345,0%@345] "
    "EMC_FREQ 0% GR3D_FREQ 0% PLL@34.5C MCPU@34.5C PMIC@100C Tboard@30C GPU@32C BCPU@34.5C thermal@33.4C "
    "Tdiode@31.75C VDD_SYS_GPU 152/152 VDD_SYS_SOC 380/380 VDD_4V0_WIFI 0/0 VDD_IN 1649/1649 "
    "VDD_SYS_CPU 152/152 VDD_SYS_DDR 115/115"
)
ORIN_JP5 = (
    "08-11-2023 10:24:47 RAM 2523/30536MB (lfb 6651x4MB) SWAP 0/15268MB (cached 0MB) "
    "CPU [1%@729,0%@729,0%@729,0%@729] EMC_FREQ 0%@2133 GR3D_FREQ 0%@[305,305] VIC_FREQ 729 "
    "APE 174 CPU@43.5C GPU@41.2C VDD_GPU_SOC 2001mW/2001mW VDD_CPU_CV 400mW/400mW VIN_SYS_5V0 2824mW/2824mW"
)
XAVIER_JP4 = (
    "RAM 1/2MB CPU [10%@1190,5%@1190] GPU 0/0 CPU 155/155 SOC 1398/1398 CV 0/0 VDDRQ 310/310 SYS5V 1719/1719"
)


def test_parse_jetpack4_tx2_line() -> None:
    parsed = parse_tegrastats_line(TX2_JP4)
    assert parsed.rails_mw == {
        "VDD_SYS_GPU": (152, 152),
        "VDD_SYS_SOC": (380, 380),
        "VDD_4V0_WIFI": (0, 0),
        "VDD_IN": (1649, 1649),
        "VDD_SYS_CPU": (152, 152),
        "VDD_SYS_DDR": (115, 115),
    }
    assert not parsed.with_units
    assert parsed.cpu == [(2.0, 345), None, None, (1.0, 345), (0.0, 345), (0.0, 345)]


def test_parse_jetpack5_line_with_units_and_date() -> None:
    parsed = parse_tegrastats_line(ORIN_JP5)
    assert parsed.rails_mw == {
        "VDD_GPU_SOC": (2001, 2001),
        "VDD_CPU_CV": (400, 400),
        "VIN_SYS_5V0": (2824, 2824),
    }
    assert parsed.with_units
    assert parsed.cpu == [(1.0, 729)] + [(0.0, 729)] * 3


def test_parse_xavier_rail_named_cpu_beside_the_cpu_cores() -> None:
    parsed = parse_tegrastats_line(XAVIER_JP4)
    assert parsed.rails_mw["CPU"] == (155, 155)
    assert parsed.rails_mw["SYS5V"] == (1719, 1719)
    assert "RAM" not in parsed.rails_mw
    assert parsed.cpu == [(10.0, 1190), (5.0, 1190)]


def test_line_without_rails() -> None:
    assert parse_tegrastats_line("RAM 2183/7852MB SWAP 0/3926MB").rails_mw == {}


def _fake_tegrastats(tmp_path, body: str) -> str:
    """An executable that behaves like tegrastats --interval <ms> (prints ``body`` lines)."""
    script = tmp_path / "tegrastats"
    script.write_text(
        f"#!{sys.executable}\n"
        "import sys, time\n"
        "interval = int(sys.argv[sys.argv.index('--interval') + 1]) / 1000\n"
        "for i in range(10000):\n"
        f"    print({body!r}.format(i=i), flush=True)\n"
        "    time.sleep(interval)\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return str(script)


def test_meter_streams_current_values_in_watts(tmp_path) -> None:
    cmd = _fake_tegrastats(tmp_path, "RAM 1/2MB CPU [1%@345] VDD_IN {i}000/500 VDD_SYS_GPU 100/100")
    options = MeterOptions(tegrastats_cmd=cmd, tegrastats_interval_ms=20, probe_timeout_s=20.0)
    meter = TegrastatsMeter.probe(options)
    try:
        assert meter.rails == ["VDD_IN", "VDD_SYS_GPU"]
        assert meter.total_channel == "VDD_IN"
        assert meter.sample_period_s(0.5) == pytest.approx(0.02)
        samples = []
        deadline = time.monotonic() + 20.0
        while len(samples) < 3 and time.monotonic() < deadline:
            samples += meter.poll()
            time.sleep(0.02)
    finally:
        meter.close()
    assert len(samples) >= 3
    # The current column (i * 1000 mW), not the average, in watts; lines arrive in order.
    watts = [s.values["VDD_IN"] for s in samples]
    assert watts[:3] == [0.0, 1.0, 2.0]
    assert all(s.values["VDD_SYS_GPU"] == pytest.approx(0.1) for s in samples)
    assert [s.t_ns for s in samples] == sorted(s.t_ns for s in samples)
    assert meter.last_cpu == [(1.0, 345)]


def test_meter_without_rails_is_unavailable(tmp_path) -> None:
    cmd = _fake_tegrastats(tmp_path, "RAM 1/2MB CPU [1%@345]")
    options = MeterOptions(tegrastats_cmd=cmd, tegrastats_interval_ms=20, probe_timeout_s=1.0)
    with pytest.raises(MeterUnavailable, match="no power rails"):
        TegrastatsMeter.probe(options)


def test_missing_executable_is_unavailable(tmp_path) -> None:
    with pytest.raises(MeterUnavailable, match="not found"):
        TegrastatsMeter.probe(MeterOptions(tegrastats_cmd=str(tmp_path / "absent")))

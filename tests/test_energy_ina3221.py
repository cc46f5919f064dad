"""INA3221 rails discovered in fake sysfs trees laid out like L4T R32 (iio) and JetPack 5 (hwmon)."""

import os

import pytest

from cosmo_edge.energy import MeterOptions, MeterUnavailable
from cosmo_edge.energy.fake_sysfs import (
    i2c_device_dir,
    set_value,
    write_ina3221_hwmon,
    write_ina3221_iio,
    write_tx2,
)
from cosmo_edge.energy.ina3221 import DERIVED_TOTAL, Ina3221Meter, discover_rails


def _probe(root) -> Ina3221Meter:
    return Ina3221Meter.probe(MeterOptions(sysfs_root=str(root)))


def test_tx2_r32_rails_at_the_documented_paths(tmp_path) -> None:
    write_tx2(tmp_path)
    rails = {r.name: r for r in discover_rails(str(tmp_path))}
    assert set(rails) == {
        "VDD_IN",
        "VDD_SYS_CPU",
        "VDD_SYS_DDR",
        "VDD_SYS_GPU",
        "VDD_SYS_SOC",
        "VDD_4V0_WIFI",
    }
    devices = tmp_path / "sys" / "bus" / "i2c" / "devices"
    # platform.md section 8: VDD_IN is 0-0041/iio:device1/in_power0_input, VDD_SYS_GPU 0-0040/.../in_power0.
    assert rails["VDD_IN"].power_mw == devices / "0-0041" / "iio:device1" / "in_power0_input"
    assert rails["VDD_SYS_DDR"].power_mw == devices / "0-0041" / "iio:device1" / "in_power2_input"
    assert rails["VDD_SYS_GPU"].power_mw == devices / "0-0040" / "iio:device0" / "in_power0_input"
    assert rails["VDD_4V0_WIFI"].power_mw == devices / "0-0040" / "iio:device0" / "in_power2_input"


def test_tx2_poll_reports_watts_and_vdd_in_total(tmp_path) -> None:
    files = write_tx2(tmp_path)
    with _probe(tmp_path) as meter:
        assert meter.total_channel == "VDD_IN"
        (sample,) = meter.poll()
        assert sample.values["VDD_IN"] == pytest.approx(1.649)
        assert sample.values["VDD_SYS_SOC"] == pytest.approx(0.380)
        assert DERIVED_TOTAL not in sample.values
        set_value(files["VDD_IN"], 4321)  # the same open file is re-read on every poll
        (again,) = meter.poll()
        assert again.values["VDD_IN"] == pytest.approx(4.321)
        assert again.t_ns > sample.t_ns


def test_other_i2c_chips_are_ignored(tmp_path) -> None:
    write_tx2(tmp_path)
    other = i2c_device_dir(tmp_path, "0-004c")
    other.mkdir(parents=True)
    (other / "name").write_text("tmp451\n")
    (other / "iio:device2").mkdir()
    (other / "iio:device2" / "rail_name_0").write_text("NOT_A_RAIL\n")
    assert "NOT_A_RAIL" not in {r.name for r in discover_rails(str(tmp_path))}


def test_iio_without_power_file_uses_voltage_times_current(tmp_path) -> None:
    write_ina3221_iio(
        tmp_path, "0-0041", "iio:device1", [("VDD_IN", 2000)], voltage_mv=5000, with_power=False
    )
    with _probe(tmp_path) as meter:
        (sample,) = meter.poll()
    assert sample.values["VDD_IN"] == pytest.approx(5000 * 400 / 1e6)  # 5 V x 400 mA = 2 W


def test_jetpack5_hwmon_layout_skips_shunt_sum_and_nc(tmp_path) -> None:
    write_ina3221_hwmon(
        tmp_path,
        "1-0040",
        "hwmon3",
        [("VDD_IN", 5000, 1000), ("VDD_CPU_GPU_CV", 5000, 200), ("NC", 0, 0)],
    )
    rails = discover_rails(str(tmp_path))
    assert [r.name for r in rails] == ["VDD_IN", "VDD_CPU_GPU_CV"]
    assert all(r.layout == "hwmon" for r in rails)
    with _probe(tmp_path) as meter:
        (sample,) = meter.poll()
    assert sample.values == pytest.approx({"VDD_IN": 5.0, "VDD_CPU_GPU_CV": 1.0})
    assert meter.total_channel == "VDD_IN"


def test_without_vdd_in_the_total_is_a_labelled_sum(tmp_path) -> None:
    write_ina3221_iio(tmp_path, "0-0040", "iio:device0", [("VDD_SYS_GPU", 1000), ("VDD_SYS_SOC", 500)])
    with _probe(tmp_path) as meter:
        (sample,) = meter.poll()
        assert meter.total_channel == DERIVED_TOTAL
        assert "sum" in meter.total_source
        assert [c.name for c in meter.channels()][-1] == DERIVED_TOTAL
    assert sample.values[DERIVED_TOTAL] == pytest.approx(1.5)


def test_duplicate_rail_names_on_carrier_monitors_are_made_unique(tmp_path) -> None:
    write_ina3221_iio(tmp_path, "0-0041", "iio:device1", [("VDD_IN", 3000)])
    write_ina3221_iio(tmp_path, "0-0042", "iio:device2", [("VDD_3V3_SYS", 100)])
    write_ina3221_iio(tmp_path, "0-0043", "iio:device3", [("VDD_3V3_SYS", 200)])
    names = [r.name for r in discover_rails(str(tmp_path))]
    assert names == ["VDD_IN", "VDD_3V3_SYS", "VDD_3V3_SYS@0-0043"]


def test_no_monitor_is_unavailable_with_the_path(tmp_path) -> None:
    with pytest.raises(MeterUnavailable, match="i2c"):
        _probe(tmp_path)


def test_unreadable_rail_is_unavailable_with_a_permission_hint(tmp_path, monkeypatch) -> None:
    files = write_tx2(tmp_path)
    real_open = os.open

    def deny(path, flags, *args):
        if str(path) == str(files["VDD_IN"]):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, flags, *args)

    monkeypatch.setattr("cosmo_edge.energy.sysfs.os.open", deny)  # works even when the tests run as root
    with pytest.raises(MeterUnavailable, match="permission"):
        _probe(tmp_path)

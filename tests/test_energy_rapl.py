"""RAPL counters: wraparound, domains found by their name file, total choice, unavailability."""

import os

import pytest

from cosmo_edge.energy import MeterOptions, MeterUnavailable
from cosmo_edge.energy.fake_sysfs import set_value, write_rapl
from cosmo_edge.energy.rapl import DERIVED_TOTAL, RaplMeter, discover_domains, unwrap_delta_uj

RANGE_UJ = 1_000_000


def _probe(root) -> RaplMeter:
    return RaplMeter.probe(MeterOptions(sysfs_root=str(root)))


def test_unwrap_delta() -> None:
    assert unwrap_delta_uj(100, 350, RANGE_UJ) == 250
    assert unwrap_delta_uj(RANGE_UJ - 100, 50, RANGE_UJ) == 150  # wrapped once
    assert unwrap_delta_uj(500, 500, RANGE_UJ) == 0


def test_meter_accumulates_across_a_wrap(tmp_path) -> None:
    files = write_rapl(tmp_path, [("intel-rapl:0", "package-0", RANGE_UJ - 300_000, RANGE_UJ)])
    with _probe(tmp_path) as meter:
        (first,) = meter.poll()
        assert first.values["package-0"] == 0.0  # relative to the first reading
        set_value(files["intel-rapl:0"], RANGE_UJ - 100_000)
        (second,) = meter.poll()
        set_value(files["intel-rapl:0"], 150_000)  # the counter wrapped
        (third,) = meter.poll()
    assert second.values["package-0"] == pytest.approx(0.2)
    assert third.values["package-0"] == pytest.approx(0.2 + 0.25)
    assert third.values[DERIVED_TOTAL] == pytest.approx(0.45)


def test_subdomains_are_named_by_their_name_file_not_index(tmp_path) -> None:
    write_rapl(
        tmp_path,
        [
            ("intel-rapl:0", "package-0", 0, None),
            ("intel-rapl:0:0", "dram", 0, None),  # index 0 is dram here, not core
            ("intel-rapl:0:1", "core", 0, None),
            ("intel-rapl:1", "package-1", 0, None),
        ],
    )
    (tmp_path / "sys" / "class" / "powercap" / "intel-rapl-mmio:0").mkdir()  # not a RAPL msr zone
    channels = [d.channel for d in discover_domains(str(tmp_path))]
    assert channels == ["package-0", "package-0/dram", "package-0/core", "package-1"]
    with _probe(tmp_path) as meter:
        assert meter.total_channel == DERIVED_TOTAL
        assert meter.total_source == "sum of package-0, package-0/dram, package-1"


def test_total_sums_packages_and_dram_but_not_core(tmp_path) -> None:
    files = write_rapl(
        tmp_path,
        [
            ("intel-rapl:0", "package-0", 0, None),
            ("intel-rapl:0:0", "core", 0, None),
            ("intel-rapl:0:1", "dram", 0, None),
        ],
    )
    with _probe(tmp_path) as meter:
        meter.poll()
        set_value(files["intel-rapl:0"], 3_000_000)
        set_value(files["intel-rapl:0:0"], 2_000_000)
        set_value(files["intel-rapl:0:1"], 500_000)
        (sample,) = meter.poll()
    assert sample.values[DERIVED_TOTAL] == pytest.approx(3.5)


def test_psys_is_the_total_when_present(tmp_path) -> None:
    write_rapl(tmp_path, [("intel-rapl:0", "package-0", 0, None), ("intel-rapl:1", "psys", 0, None)])
    with _probe(tmp_path) as meter:
        assert meter.total_channel == "psys"
        assert DERIVED_TOTAL not in meter.poll()[0].values


def test_no_powercap_is_unavailable(tmp_path) -> None:
    with pytest.raises(MeterUnavailable, match="powercap"):
        _probe(tmp_path)


def test_root_only_counter_is_unavailable_with_the_udev_hint(tmp_path, monkeypatch) -> None:
    write_rapl(tmp_path, [("intel-rapl:0", "package-0", 0, None)])
    real_open = os.open

    def deny(path, flags, *args):
        if str(path).endswith("energy_uj"):  # mode 0400 root since Linux 5.10
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, flags, *args)

    monkeypatch.setattr("cosmo_edge.energy.sysfs.os.open", deny)
    with pytest.raises(MeterUnavailable, match="root-only since Linux 5.10"):
        _probe(tmp_path)

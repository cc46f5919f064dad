"""Radar .cfg parsing, the frame-size check, and the CLI exchange against a fake demo on a pty."""

import os

import pytest
import serial

from drivers.radar_ti_cli import (
    DEFAULT_CFG,
    RadarCli,
    RadarConfigError,
    load_cfg,
    parse_cfg,
    parse_sdk_version,
)
from drivers.sim.pty_device import PtyDevice
from drivers.sim.ti_radar_device import FakeTiRadar


def test_default_cfg_is_a_20hz_points_only_profile() -> None:
    cfg = load_cfg()
    assert cfg.frame_period_s == pytest.approx(0.05)
    assert cfg.gui_monitor == (1, 0, 0, 0, 0, 1)  # points + side info, stats; no profiles or heat maps
    assert (cfg.num_range_bins, cfg.num_doppler_bins, cfg.num_virtual_antennas) == (128, 32, 12)
    assert 0.3 < cfg.doppler_resolution_mps < 0.45
    assert not any(line.split()[0] in ("sensorStop", "flushCfg", "sensorStart") for line in cfg.commands)
    assert cfg.commands[0] == "dfeDataOutputMode 1" and cfg.commands[-1] == "calibData 0 0 0"
    assert cfg.check_fits(150, 921600) < 0.05


def test_frame_that_cannot_fit_is_rejected() -> None:
    text = DEFAULT_CFG.read_text().replace("guiMonitor -1 1 0 0 0 0 1", "guiMonitor -1 1 1 1 1 1 1")
    cfg = parse_cfg(text)
    with pytest.raises(RadarConfigError, match="frame period"):
        cfg.check_fits(150, 921600)
    with pytest.raises(RadarConfigError, match="missing frameCfg"):
        parse_cfg(text.replace("frameCfg", "% frameCfg"))


@pytest.fixture()
def radar_cli(tmp_path):
    """A fake demo CLI on a pty and a pyserial port opened on it."""
    pty = PtyDevice(os.path.join(tmp_path, "cli"))
    pty.plug()
    fake = FakeTiRadar(pty)
    fake.start()
    port = serial.Serial(pty.link_path, 115200, timeout=0.05)
    yield fake, port
    port.close()
    fake.stop()
    pty.close()


def test_configure_sends_every_line_in_order(radar_cli) -> None:
    fake, port = radar_cli
    cfg = load_cfg()
    flushed = []
    cli = RadarCli(port, line_timeout_s=1.0)
    cli.configure(cfg, before_start=lambda: flushed.append(list(fake.commands)))
    assert fake.commands == ["version", "sensorStop", "flushCfg"] + cfg.commands + ["sensorStart"]
    assert flushed[0][-1] == cfg.commands[-1]  # the data port was emptied before sensorStart
    assert fake.streaming and fake.frame_period_s == pytest.approx(0.05)
    assert parse_sdk_version(cli.version_info) == (3, 5, 0, 4)
    assert cli.version_info["Platform"] == "xWR68xx"


def test_error_reply_names_the_line(radar_cli) -> None:
    fake, port = radar_cli
    fake.replies["cfarCfg"] = "Error -1"
    with pytest.raises(RadarConfigError, match="cfarCfg -1 0 2 8 4 3 0 15 1.*Error -1"):
        RadarCli(port).configure(load_cfg())
    assert not fake.streaming


def test_unknown_command_is_an_error(radar_cli) -> None:
    _, port = radar_cli
    cfg = parse_cfg(DEFAULT_CFG.read_text() + "\nfrobnicate 1 2\n")
    with pytest.raises(RadarConfigError, match="frobnicate.*not recognized"):
        RadarCli(port).configure(cfg)


def test_silent_radar_times_out(tmp_path) -> None:
    pty = PtyDevice(os.path.join(tmp_path, "cli"))
    pty.plug()
    port = serial.Serial(pty.link_path, 115200, timeout=0.05)
    try:
        with pytest.raises(RadarConfigError, match="no 'Done'.*version"):
            RadarCli(port, line_timeout_s=0.2).configure(load_cfg())
    finally:
        port.close()
        pty.close()

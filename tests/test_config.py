"""Daemon config: example files, errors with key path and line, loopback/CURVE rule, check-config."""

import inspect
import textwrap
from pathlib import Path

import pytest
from pydantic import BaseModel

from cosmo_edge.cli import main
from cosmo_edge.config import (
    ConfigError,
    DaemonConfig,
    ImuSerialSensor,
    RadarTiSensor,
    RealSenseDepthSensor,
    load_config,
    parse_config,
)

CONFIG_DIR = Path(__file__).resolve().parents[1] / "cosmo_edge" / "configs"
MINIMAL = """\
sensors:
  - type: imu_serial
    port: /dev/ttyUSB0
model:
  path: model.pt
"""


def _issues(text: str):
    with pytest.raises(ConfigError) as info:
        parse_config(textwrap.dedent(text), "c.yaml")
    return [(issue.line, issue.path, issue.message) for issue in info.value.issues]


@pytest.mark.parametrize("name", ["sim.yaml", "jetson.yaml"])
def test_example_configs_are_valid(name) -> None:
    config = load_config(CONFIG_DIR / name)
    assert {s.modality for s in config.sensors} == {"imu", "radar", "depth"}


def test_defaults_and_driver_kwargs() -> None:
    config = parse_config(MINIMAL)
    assert config.publish.endpoint == "tcp://127.0.0.1:5556" and config.model.backend == "auto"
    assert config.window.window_s == 2.0 and config.model.threads == 1
    assert config.sensors[0].driver_kwargs()["port"] == "/dev/ttyUSB0"
    assert "type" not in config.sensors[0].driver_kwargs()


def test_errors_carry_key_path_and_line() -> None:
    issues = _issues(
        """\
        sensors:
          - type: imu_serial
            port: /dev/ttyUSB0
            baud: -5
            colour: red
          - type: lidar
        model:
          backend: cuda
        window:
          window_s: 1
          hop_s: 2
        """
    )
    assert (4, "sensors[0].baud", "Input should be greater than 0") in issues
    assert (5, "sensors[0].colour", "Extra inputs are not permitted") in issues
    assert any(line == 6 and path == "sensors[1].type" and "lidar" in msg for line, path, msg in issues)
    assert (7, "model.path", "Field required") in issues  # missing key: the line of its parent
    assert any(line == 8 and path == "model.backend" for line, path, _ in issues)
    assert any(line == 9 and path == "window" and "hop_s" in msg for line, path, msg in issues)


def test_duplicate_keys_and_yaml_syntax() -> None:
    issues = _issues(MINIMAL + "log_level: INFO\nlog_level: DEBUG\n")
    assert issues == [(7, "log_level", "duplicate key (first on line 6)")]
    issues = _issues("sensors: [\nmodel: {path: x\n")
    assert len(issues) == 1 and issues[0][0] is not None and "YAML syntax" in issues[0][2]
    assert _issues("- just\n- a list\n")[0][2].startswith("expected a mapping")


@pytest.mark.parametrize(
    "endpoint, ok",
    [
        ("tcp://127.0.0.1:5556", True),
        ("tcp://localhost:5556", True),
        ("tcp://[::1]:5556", True),
        ("ipc:///run/cosmo-edge/pub.sock", True),
        ("tcp://*:5556", False),
        ("tcp://0.0.0.0:5556", False),
        ("tcp://192.168.1.20:5556", False),
        ("tcp://eth0:5556", False),
        ("udp://127.0.0.1:5556", False),
        ("tcp://127.0.0.1", False),
    ],
)
def test_publish_endpoint_rules(endpoint, ok) -> None:
    text = MINIMAL + f"publish:\n  endpoint: {endpoint}\n"
    if ok:
        assert parse_config(text).publish.endpoint == endpoint
    else:
        issues = _issues(text)
        assert [(line, path) for line, path, _ in issues] == [(7, "publish.endpoint")]


def test_non_loopback_bind_allowed_with_curve() -> None:
    text = MINIMAL + (
        "publish:\n  endpoint: tcp://*:5556\n  curve:\n"
        "    server_secret_key_file: /etc/cosmo-edge/server.key_secret\n"
        "    authorized_clients_dir: /etc/cosmo-edge/clients\n"
    )
    assert parse_config(text).publish.curve is not None


def test_cross_checks() -> None:
    two_imus = MINIMAL.replace("model:", "  - type: imu_serial\n    port: /dev/ttyUSB1\nmodel:")
    assert any("both feed modality 'imu'" in msg for _, _, msg in _issues(two_imus))
    sim_without_simulator = MINIMAL.replace("/dev/ttyUSB0", "sim:imu")
    assert any("no simulator section" in msg for _, _, msg in _issues(sim_without_simulator))
    assert any(
        "unknown simulated device" in msg for _, _, msg in _issues(MINIMAL.replace("/dev/ttyUSB0", "sim:gps"))
    )
    radar = MINIMAL.replace("model:", "  - type: radar_ti\n    data_port: /dev/ttyUSB2\nmodel:")
    assert any("cli_port is not set" in msg for _, _, msg in _issues(radar))


def _models(model: type):
    yield model
    for field in model.model_fields.values():
        for candidate in getattr(field.annotation, "__args__", ()) + (field.annotation,):
            if isinstance(candidate, type) and issubclass(candidate, BaseModel):
                yield from _models(candidate)


def test_every_field_is_described_and_extra_keys_forbidden() -> None:
    models = set(_models(DaemonConfig)) | {ImuSerialSensor, RadarTiSensor, RealSenseDepthSensor}
    assert len(models) >= 12
    for model in models:
        assert model.model_config.get("extra") == "forbid", model
        for name, field in model.model_fields.items():
            assert field.description, f"{model.__name__}.{name} has no description"


@pytest.mark.parametrize(
    "sensor, driver",
    [
        (ImuSerialSensor, "drivers.imu_serial:ImuSerialDriver"),
        (RadarTiSensor, "drivers.radar_ti:TiRadarDriver"),
        (RealSenseDepthSensor, "drivers.realsense_depth:RealSenseDepthDriver"),
    ],
)
def test_sensor_fields_are_driver_keyword_arguments(sensor, driver) -> None:
    import importlib

    module_name, cls_name = driver.split(":")
    params = inspect.signature(getattr(importlib.import_module(module_name), cls_name).__init__).parameters
    driver_fields = set(sensor.model_fields) - {"type", "modality", "latency_s"}
    assert driver_fields <= set(params), driver_fields - set(params)


def test_check_config_command(tmp_path, capsys) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(MINIMAL)
    assert main(["check-config", str(good)]) == 0
    assert capsys.readouterr().out.strip() == "OK"
    bad = tmp_path / "bad.yaml"
    bad.write_text(MINIMAL.replace("port: /dev/ttyUSB0", "port: /dev/ttyUSB0\n    baud: fast"))
    assert main(["check-config", str(bad)]) == 1
    out = capsys.readouterr().out.strip().splitlines()
    assert out == [
        f"{bad}:4: sensors[0].baud: Input should be a valid integer, unable to parse string as an integer"
    ]
    assert main(["check-config", str(tmp_path / "missing.yaml")]) == 1
    assert "cannot read" in capsys.readouterr().out


def test_anchors_aliases_and_merge_keys_load_as_in_safe_load() -> None:
    text = MINIMAL.replace("model:", "model: &model") + (
        "publish: &pub\n  hwm: 10\n  queue_size: 20\n"
        "labels:\n  <<: *pub\n"  # hwm/queue_size are not label settings: extra keys, as safe_load gives
    )
    issues = _issues(text)
    assert {(path, msg) for _, path, msg in issues} == {
        ("labels.hwm", "Extra inputs are not permitted"),
        ("labels.queue_size", "Extra inputs are not permitted"),
    }
    merged = MINIMAL + "window: &w {window_s: 3.0, hop_s: 1.0}\npublish: {<<: {hwm: 7}, hwm: 9}\n"
    config = parse_config(merged)
    assert (config.window.window_s, config.publish.hwm) == (3.0, 9)  # own keys override merged ones


def test_unbuildable_yaml_values_name_their_line_and_key() -> None:
    text = MINIMAL.replace("/dev/ttyUSB0", "/dev/ttyUSB0\n    baud: !!int fast")
    assert _issues(text) == [(4, "sensors[0].baud", "cannot read 'fast' as !!int")]
    bomb = "a: &a [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]\n" + "".join(
        f"{n}: &{n} [{', '.join(['*' + p] * 10)}]\n" for p, n in zip("abcde", "bcdef")
    )
    assert [(line, path) for line, path, _ in _issues(bomb)] == [(5, "e")]  # 10**5 ones and the lists
    chain = "a0: &a0 [1]\n" + "".join(f"a{i}: &a{i} [*a{i - 1}]\n" for i in range(1, 100))
    first = _issues(chain)[0]
    assert first[:2] == (64, "a63[0]") and "deeper than 64 levels" in first[2]

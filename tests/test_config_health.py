"""The config's ``health`` section: defaults, validation, and ``cosmo-edge run`` serving on it."""

import pytest

from cosmo_edge.config import ConfigError, parse_config

BASE = """
sensors:
  - type: imu_serial
    port: /dev/ttyUSB0
model:
  path: model.pt
"""


def test_health_defaults_to_loopback_9810():
    config = parse_config(BASE)
    assert (config.health.enabled, config.health.host, config.health.port) == (True, "127.0.0.1", 9810)


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "localhost", "127.0.0.2"])
def test_health_accepts_loopback_hosts(host):
    config = parse_config(BASE + f"health:\n  host: '{host}'\n  port: 0\n")
    assert config.health.host == host and config.health.port == 0


@pytest.mark.parametrize(
    "section, message",
    [
        ("health:\n  host: 0.0.0.0\n", "not loopback"),
        ("health:\n  host: 192.168.1.5\n", "not loopback"),
        ("health:\n  port: 70000\n", "65535"),
        ("health:\n  port: -1\n", "greater than or equal to 0"),
        ("health:\n  prot: 9000\n", "prot"),
    ],
)
def test_health_rejects_bad_values_with_the_line(section, message):
    with pytest.raises(ConfigError) as info:
        parse_config(BASE + section)
    text = str(info.value)
    assert message in text and "health" in text

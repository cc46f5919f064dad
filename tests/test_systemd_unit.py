"""The systemd unit: `systemd-analyze verify` on a rendered copy, the agreed keys, systemd 237 only."""

import os
import pathlib
import shutil
import subprocess
from typing import Dict, List, Tuple

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
UNIT = ROOT / "systemd" / "cosmo-edge.service"
ENV_FILE = ROOT / "systemd" / "cosmo-edge.env"
INSTALLED_BINARY = "/opt/cosmo-edge/venv/bin/cosmo-edge"
INSTALLED_ENV_FILE = "/etc/cosmo-edge/cosmo-edge.env"

# Every key the unit may use, with the systemd version that introduced it (systemd NEWS); the
# target is systemd 237 (Ubuntu 18.04 / JetPack 4.6), so nothing newer may appear.
KEY_SINCE: Dict[str, int] = {
    "Description": 1, "Documentation": 187, "After": 1, "Wants": 1,
    "StartLimitIntervalSec": 229, "StartLimitBurst": 229,
    "Type": 1, "NotifyAccess": 1, "WatchdogSec": 1, "Restart": 1, "RestartSec": 1,
    "TimeoutStartSec": 1, "TimeoutStopSec": 1, "EnvironmentFile": 1, "ExecStart": 1,
    "StandardOutput": 1, "StandardError": 1, "SyslogIdentifier": 1, "Environment": 1,
    "User": 1, "Group": 1, "SupplementaryGroups": 1, "UMask": 1,
    "StateDirectory": 235, "CacheDirectory": 235, "LogsDirectory": 235, "RuntimeDirectory": 211,
    "StateDirectoryMode": 235, "CacheDirectoryMode": 235, "LogsDirectoryMode": 235,
    "RuntimeDirectoryMode": 211,
    "NoNewPrivileges": 187, "PrivateTmp": 1, "ProtectSystem": 214, "ProtectHome": 214,
    "ProtectKernelTunables": 232, "ProtectKernelModules": 232, "ProtectControlGroups": 232,
    "RestrictAddressFamilies": 211, "RestrictRealtime": 231, "RestrictNamespaces": 233,
    "LockPersonality": 235, "SystemCallArchitectures": 209, "WantedBy": 1,
}  # fmt: skip
TARGET_SYSTEMD = 237


def parse_unit(text: str) -> List[Tuple[str, str, str]]:
    """(section, key, value) for every assignment, in order (keys may repeat, e.g. Environment=)."""
    entries, section = [], ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
            continue
        key, sep, value = line.partition("=")
        assert sep, f"not an assignment: {raw!r}"
        entries.append((section, key.strip(), value.strip()))
    return entries


def values(entries: List[Tuple[str, str, str]], section: str, key: str) -> List[str]:
    return [v for s, k, v in entries if s == section and k == key]


def render(tmp_path: pathlib.Path, extra: str = "") -> pathlib.Path:
    """The unit with ExecStart= and EnvironmentFile= pointing at real files under tmp_path.

    verify rejects a unit whose ExecStart binary is missing, and the test machine has no install
    prefix, so a stand-in executable takes its place (the same rewrite install.sh does for --prefix).
    """
    binary = tmp_path / "venv" / "bin" / "cosmo-edge"
    binary.parent.mkdir(parents=True, exist_ok=True)
    binary.write_text("#!/bin/sh\nexit 0\n")
    binary.chmod(0o755)
    env_file = tmp_path / "cosmo-edge.env"
    shutil.copy(ENV_FILE, env_file)
    text = UNIT.read_text().replace(INSTALLED_BINARY, str(binary)).replace(INSTALLED_ENV_FILE, str(env_file))
    assert str(binary) in text and str(env_file) in text
    if extra:
        text = text.replace("[Install]", extra + "\n\n[Install]")
    path = tmp_path / "cosmo-edge.service"
    path.write_text(text)
    return path


def verify(unit: pathlib.Path) -> Tuple[int, str]:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed (package systemd)")
    env = dict(os.environ, SYSTEMD_LOG_COLOR="0", SYSTEMD_PAGER="")
    result = subprocess.run(
        [analyze, "verify", "--man=no", str(unit)], capture_output=True, text=True, env=env, timeout=60
    )
    return result.returncode, result.stdout + result.stderr


def test_systemd_analyze_verify_is_clean(tmp_path) -> None:
    rc, output = verify(render(tmp_path))
    # verify returns 0 for unknown keys and bad values but prints a warning naming the file.
    ours = [line for line in output.splitlines() if "cosmo-edge" in line]
    assert rc == 0 and ours == [], output


def test_verify_would_catch_a_bad_key_or_value(tmp_path) -> None:
    rc, output = verify(render(tmp_path, extra="[Service]\nProtectKernelLogz=yes\nRestart=sometimes"))
    assert "ProtectKernelLogz" in output and "sometimes" in output


def test_agreed_settings() -> None:
    entries = parse_unit(UNIT.read_text())
    expected_service = {
        "Type": "notify",
        "NotifyAccess": "main",
        "WatchdogSec": "30",
        "Restart": "on-failure",
        "RestartSec": "3",
        "TimeoutStartSec": "120",
        "TimeoutStopSec": "20",
        "User": "cosmo-edge",
        "SupplementaryGroups": "dialout video plugdev",
        "StateDirectory": "cosmo-edge",
        "CacheDirectory": "cosmo-edge",
        "RuntimeDirectory": "cosmo-edge",
        "LogsDirectory": "cosmo-edge",
        "EnvironmentFile": INSTALLED_ENV_FILE,
        "ExecStart": INSTALLED_BINARY + " run --config ${COSMO_EDGE_CONFIG}",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "NoNewPrivileges": "yes",
        "PrivateTmp": "yes",
        "ProtectKernelTunables": "yes",
        "ProtectKernelModules": "yes",
        "ProtectControlGroups": "yes",
        "RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6 AF_NETLINK",
        "RestrictRealtime": "yes",
        "LockPersonality": "yes",
    }
    for key, value in expected_service.items():
        assert values(entries, "Service", key) == [value], key
    # The start limit lives in [Unit] (since systemd 229); in [Service] it is the old spelling.
    assert values(entries, "Unit", "StartLimitIntervalSec") == ["300"]
    assert values(entries, "Unit", "StartLimitBurst") == ["5"]
    assert values(entries, "Service", "StartLimitIntervalSec") == []
    # Devices must stay visible; W^X would break CUDA's JIT.
    assert values(entries, "Service", "PrivateDevices") == []
    assert values(entries, "Service", "MemoryDenyWriteExecute") == []
    assert "PYTHONFAULTHANDLER=1" in values(entries, "Service", "Environment")
    assert "PYTHONUNBUFFERED=1" in values(entries, "Service", "Environment")


def test_only_keys_that_systemd_237_knows() -> None:
    for section, key, _ in parse_unit(UNIT.read_text()):
        assert key in KEY_SINCE, f"[{section}] {key}= is not in the systemd-237 list of this test"
        assert KEY_SINCE[key] <= TARGET_SYSTEMD, f"{key}= needs systemd {KEY_SINCE[key]}"


def test_environment_file_defines_the_config_path() -> None:
    assignments = {}
    for line in ENV_FILE.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, sep, value = line.partition("=")
            assert sep and key == key.strip() and key.isidentifier(), line
            assignments[key] = value
    assert assignments == {"COSMO_EDGE_CONFIG": "/etc/cosmo-edge/config.yaml"}

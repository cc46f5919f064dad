"""install.sh staged into a temporary root (--destdir): files, modes, prefix rewrite, idempotence."""

import os
import pathlib
import shutil
import stat
import subprocess
import tempfile

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "systemd" / "install.sh"


def run_install(*args: str) -> subprocess.CompletedProcess:
    if shutil.which("bash") is None:
        pytest.skip("bash is not installed")
    return subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True, timeout=60)


def test_script_parses() -> None:
    result = subprocess.run(["bash", "-n", str(SCRIPT)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_staged_install_writes_every_file_with_the_prefix(tmp_path) -> None:
    dest = tmp_path / "root"
    result = run_install("--destdir", str(dest), "--prefix", "/srv/cosmo")
    assert result.returncode == 0, result.stderr
    unit = (dest / "etc/systemd/system/cosmo-edge.service").read_text()
    assert "ExecStart=/srv/cosmo/venv/bin/cosmo-edge run --config ${COSMO_EDGE_CONFIG}" in unit
    assert "/opt/cosmo-edge" not in unit
    assert (dest / "etc/udev/rules.d/99-cosmo-edge.rules").read_bytes() == (
        ROOT / "systemd/99-cosmo-edge.rules"
    ).read_bytes()
    assert (dest / "srv/cosmo/docs/operations.md").is_file()
    etc = dest / "etc/cosmo-edge"
    assert stat.S_IMODE(etc.stat().st_mode) == 0o750
    assert stat.S_IMODE((etc / "config.yaml").stat().st_mode) == 0o640
    assert (etc / "config.yaml").read_bytes() == (ROOT / "cosmo_edge/configs/jetson.yaml").read_bytes()
    assert "COSMO_EDGE_CONFIG=/etc/cosmo-edge/config.yaml" in (etc / "cosmo-edge.env").read_text()


def test_staged_unit_with_a_real_prefix_passes_verify(tmp_path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed (package systemd)")
    prefix = tmp_path / "opt"
    binary = prefix / "venv/bin/cosmo-edge"
    binary.parent.mkdir(parents=True)
    binary.write_text("#!/bin/sh\nexit 0\n")
    binary.chmod(0o755)
    dest = tmp_path / "root"
    assert run_install("--destdir", str(dest), "--prefix", str(prefix)).returncode == 0
    unit = dest / "etc/systemd/system/cosmo-edge.service"
    result = subprocess.run(
        [analyze, "verify", "--man=no", str(unit)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0 and "cosmo-edge" not in result.stdout + result.stderr, result.stderr


def test_rerun_keeps_local_settings(tmp_path) -> None:
    dest = tmp_path / "root"
    assert run_install("--destdir", str(dest)).returncode == 0
    config = dest / "etc/cosmo-edge/config.yaml"
    env_file = dest / "etc/cosmo-edge/cosmo-edge.env"
    config.write_text("# edited on the device\n")
    env_file.write_text("COSMO_EDGE_CONFIG=/etc/cosmo-edge/other.yaml\n")
    result = run_install("--destdir", str(dest))
    assert result.returncode == 0, result.stderr
    assert config.read_text() == "# edited on the device\n"
    assert env_file.read_text() == "COSMO_EDGE_CONFIG=/etc/cosmo-edge/other.yaml\n"
    assert "keeping" in result.stdout


def test_bad_arguments_fail_with_a_message(tmp_path) -> None:
    result = run_install("--destdir", str(tmp_path), "--prefix", "relative")
    assert result.returncode != 0 and "absolute path" in result.stderr
    result = run_install("--destdir", str(tmp_path), "--bogus")
    assert result.returncode != 0 and "unknown option --bogus" in result.stderr
    result = run_install("--destdir", str(tmp_path), "--config", str(tmp_path / "missing.yaml"))
    assert result.returncode != 0 and "does not exist" in result.stderr


def test_refuses_a_real_install_without_root() -> None:
    if os.geteuid() != 0:
        result = run_install("--no-venv", "--no-systemctl", "--no-user")
        assert result.returncode != 0 and "run as root" in result.stderr
        return
    # As root, drop to "nobody" to see the refusal a normal user gets; the checkout may not be
    # readable by nobody, so run a copy from a world-readable directory.
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root and setpriv (util-linux) is missing")
    scratch = pathlib.Path(tempfile.mkdtemp())
    try:
        scratch.chmod(0o755)
        shutil.copy(SCRIPT, scratch / "install.sh")
        (scratch / "config.yaml").write_text("sensors: []\n")
        for path in scratch.iterdir():
            path.chmod(0o644)
        command = [
            setpriv,
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "bash",
            str(scratch / "install.sh"),
        ]
        command += ["--config", str(scratch / "config.yaml"), "--no-venv", "--no-systemctl", "--no-user"]
        result = subprocess.run(command, capture_output=True, text=True, timeout=60)
    finally:
        shutil.rmtree(scratch)
    assert result.returncode != 0 and "run as root" in result.stderr, result.stderr


def test_help_lists_the_options() -> None:
    result = run_install("--help")
    assert result.returncode == 0 and "--destdir" in result.stdout and "--prefix" in result.stdout

"""udev rules: syntax, operators, labels, and the device roles the docs and configs rely on.

`udevadm verify` only exists from systemd 254; where it is available it runs too. The static checks
below catch the mistakes udev would silently ignore (a rule that never matches is not an error).
"""

import pathlib
import re
import shutil
import subprocess
from typing import Dict, List, Tuple

import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[1]
RULES = ROOT / "systemd" / "99-cosmo-edge.rules"

MATCH_KEYS = {
    "ACTION",
    "SUBSYSTEM",
    "SUBSYSTEMS",
    "KERNEL",
    "KERNELS",
    "ATTR",
    "ATTRS",
    "ENV",
    "DRIVERS",
    "TAG",
}
ASSIGN_KEYS = {"GROUP", "MODE", "OWNER", "SYMLINK", "ENV", "IMPORT", "GOTO", "LABEL", "RUN", "TAG", "ATTR"}
TOKEN = re.compile(r'^\s*([A-Z_]+)(?:\{([^}]+)\})?\s*(==|!=|\+=|-=|:=|=)\s*"([^"]*)"\s*$')
Token = Tuple[str, str, str, str]  # key, attribute, operator, value


def rules() -> List[Tuple[int, List[Token]]]:
    """(line number, tokens) of every rule line."""
    parsed = []
    for number, raw in enumerate(RULES.read_text().splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        assert not line.endswith("\\"), f"line {number}: continuation lines are not used here"
        tokens = []
        for part in re.split(r',(?=(?:[^"]*"[^"]*")*[^"]*$)', line):
            match = TOKEN.match(part)
            assert match, f"line {number}: cannot parse {part!r}"
            key, attr, op, value = match.groups()
            tokens.append((key, attr or "", op, value))
        parsed.append((number, tokens))
    return parsed


def test_every_token_uses_a_known_key_and_a_fitting_operator() -> None:
    for number, tokens in rules():
        for key, _, op, value in tokens:
            if op in ("==", "!="):
                assert key in MATCH_KEYS, f"line {number}: {key} cannot be matched"
            else:
                assert key in ASSIGN_KEYS, f"line {number}: {key} cannot be assigned"
            if key == "MODE":
                assert re.fullmatch(r"0[0-7]{3}", value), f"line {number}: MODE {value}"
            if key == "GROUP":
                assert value in {"dialout", "video", "plugdev"}, f"line {number}: group {value}"
            if key == "SYMLINK":
                assert op == "+=" and value.startswith("cosmo-edge/"), f"line {number}: {value}"


def test_gotos_have_labels_after_them() -> None:
    labels: Dict[str, int] = {}
    gotos: List[Tuple[int, str]] = []
    for number, tokens in rules():
        for key, _, _, value in tokens:
            if key == "LABEL":
                labels[value] = number
            if key == "GOTO":
                gotos.append((number, value))
    assert gotos
    for number, target in gotos:
        assert target in labels and labels[target] > number, f"line {number}: GOTO {target}"


def test_usb_properties_are_imported_before_use() -> None:
    import_line = None
    for number, tokens in rules():
        if ("IMPORT", "builtin", "=", "usb_id") in tokens:
            import_line = number
        for key, attr, _, _ in tokens:
            if key == "ENV" and attr.startswith("ID_") and attr != "ID_MM_DEVICE_IGNORE":
                assert import_line is not None and import_line < number, (
                    f"line {number}: {attr} before usb_id"
                )


def test_no_rule_mixes_device_and_interface_attributes() -> None:
    # All ATTRS{} of one rule must match on one parent device: idVendor lives on the USB device,
    # bInterfaceNumber on the interface, so a rule with both never matches.
    for number, tokens in rules():
        attrs = {attr for key, attr, _, _ in tokens if key == "ATTRS"}
        assert not ({"idVendor", "idProduct", "serial"} & attrs and "bInterfaceNumber" in attrs), number


def symlinks() -> Dict[str, List[Dict[str, str]]]:
    """Symlink name -> the ENV matches of each rule that creates it."""
    found: Dict[str, List[Dict[str, str]]] = {}
    for _, tokens in rules():
        env = {attr: value for key, attr, op, value in tokens if key == "ENV" and op == "=="}
        for key, _, _, value in tokens:
            if key == "SYMLINK":
                found.setdefault(value, []).append(env)
    return found


def test_roles_and_radar_interfaces_match_the_shipped_config() -> None:
    links = symlinks()
    assert {"cosmo-edge/imu", "cosmo-edge/radar-cli", "cosmo-edge/radar-data"} <= set(links)
    cp2105 = {
        link: env["ID_USB_INTERFACE_NUM"]
        for link, envs in links.items()
        for env in envs
        if env.get("ID_VENDOR_ID") == "10c4" and env.get("ID_MODEL_ID") == "ea70"
    }
    assert cp2105 == {"cosmo-edge/radar-cli": "00", "cosmo-edge/radar-data": "01"}
    # jetson.yaml names the same CP2105 by id: the CLI is interface 00, the data port 01.
    config = yaml.safe_load((ROOT / "cosmo_edge/configs/jetson.yaml").read_text())
    radar = next(s for s in config["sensors"] if s["type"] == "radar_ti")
    assert radar["cli_port"].endswith("-if00-port0") and radar["data_port"].endswith("-if01-port0")


def test_operations_doc_names_every_link() -> None:
    doc = (ROOT / "docs" / "operations.md").read_text()
    for link in symlinks():
        assert "/dev/" + link.replace("%k", "videoN") in doc, link


def test_udevadm_verify_when_available() -> None:
    udevadm = shutil.which("udevadm")
    if udevadm is None:
        pytest.skip("udevadm is not installed")
    probe = subprocess.run([udevadm, "verify", "--help"], capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip("udevadm has no verify verb (systemd < 254)")
    result = subprocess.run([udevadm, "verify", str(RULES)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr

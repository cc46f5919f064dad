"""The CLI builds, lists its subcommands and reports its version."""

import subprocess
import sys

from cosmo_edge import __version__
from cosmo_edge.cli import COMMAND_MODULES, build_parser


def test_every_registered_command_has_help() -> None:
    parser = build_parser()
    help_text = parser.format_help()
    for module_name in COMMAND_MODULES:
        assert module_name.rsplit(".", 1)[-1].replace("_", "-") in help_text


def test_version_flag() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "cosmo_edge", "--version"], capture_output=True, text=True, check=True
    )
    assert __version__ in out.stdout

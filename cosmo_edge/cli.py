"""The ``cosmo-edge`` command line: one subcommand per module under ``cosmo_edge.commands``.

Each command module defines ``NAME``, ``HELP`` (one line), ``add_arguments(parser)`` and
``run(args) -> int``. Heavy imports (torch, zmq) happen inside ``run`` so that ``--help`` and
``check-config`` stay fast on the device.
"""

import argparse
import importlib
import logging
import sys
from typing import List, Optional

from cosmo_edge import __version__

# Order here is the order in ``cosmo-edge --help``.
COMMAND_MODULES: List[str] = [
    "cosmo_edge.commands.demo",
    "cosmo_edge.commands.check_config",
    "cosmo_edge.commands.pretrain",
    "cosmo_edge.commands.finetune",
    "cosmo_edge.commands.evaluate",
    "cosmo_edge.commands.convert_dataset",
    "cosmo_edge.commands.bench",
    "cosmo_edge.commands.label",
    "cosmo_edge.commands.labels",
    "cosmo_edge.commands.model",
    "cosmo_edge.commands.simulate",
    "cosmo_edge.commands.run",
    "cosmo_edge.commands.subscribe",
    "cosmo_edge.commands.train_bundled",
]


def build_parser() -> argparse.ArgumentParser:
    """Build the top-level parser with every registered subcommand."""
    parser = argparse.ArgumentParser(prog="cosmo-edge", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"cosmo-edge {__version__}")
    parser.add_argument(
        "--log-level",
        default="INFO",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="logging threshold for messages on stderr",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for module_name in COMMAND_MODULES:
        module = importlib.import_module(module_name)
        sub = subparsers.add_parser(module.NAME, help=module.HELP, description=module.HELP)
        module.add_arguments(sub)
        sub.set_defaults(run=module.run)
    return parser


def configure_logging(level: str) -> None:
    """Log one line per record naming the thread (stream or stage) and the module.

    Under systemd (stdout or stderr is the ``$JOURNAL_STREAM`` connection) the lines go to that
    stream without a timestamp and with a ``<priority>`` prefix journald understands; otherwise to
    stderr with a timestamp (see ``cosmo_edge.journald``).
    """
    from cosmo_edge.journald import TERMINAL_FORMAT, JournalFormatter, is_journal_stream

    journal = next((s for s in (sys.stdout, sys.stderr) if is_journal_stream(s)), None)
    handler = logging.StreamHandler(journal if journal is not None else sys.stderr)
    handler.setFormatter(JournalFormatter() if journal is not None else logging.Formatter(TERMINAL_FORMAT))
    logging.basicConfig(level=getattr(logging, level), handlers=[handler])


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point of the ``cosmo-edge`` console script."""
    args = build_parser().parse_args(argv)
    configure_logging(args.log_level)
    return int(args.run(args) or 0)

"""``cosmo-edge check-config FILE``: validate a daemon config and print each problem with its line."""

import argparse

NAME = "check-config"
HELP = "validate a daemon config file; print FILE:LINE: key.path: message per problem"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """One positional argument: the YAML file."""
    parser.add_argument("file", help="daemon config (YAML)")


def run(args: argparse.Namespace) -> int:
    """Exit 0 and print OK when the file is valid, else print every issue and exit 1."""
    from cosmo_edge.config import ConfigError, format_issue, load_config

    try:
        load_config(args.file)
    except ConfigError as exc:
        for issue in exc.issues:
            print(format_issue(args.file, issue))
        return 1
    print("OK")
    return 0

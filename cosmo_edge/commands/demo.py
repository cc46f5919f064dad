"""``cosmo-edge demo``: placeholder until the training pipeline lands; prints what it will do."""

import argparse

NAME = "demo"
HELP = "train a small Cosmo model on generated data and print its accuracy"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """No options yet."""


def run(args: argparse.Namespace) -> int:
    """Report that the training demo is not available yet and fail, so nobody mistakes it for done."""
    print("cosmo-edge demo: the training pipeline is not built yet")
    return 1

"""dan-fer train: see dan_core.training.train."""

from __future__ import annotations

import argparse

from dan_core.training import train


def add_arguments(parser: argparse.ArgumentParser) -> None:
    train.get_args_parser(parser)


def run(args: argparse.Namespace) -> int:
    train.main(train.config_from_args(args))
    return 0

"""dan-fer app: the desktop app. Qt is imported only when the command runs (dan_core has no Qt)."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from app.main import add_arguments as app_arguments  # app.main imports no Qt at module level

    app_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from app.main import options_from_args
    from app.main import run as run_app

    return run_app(options_from_args(args))

"""``dan-fer app``: the desktop app as a subcommand of the ``dan-fer`` command line.

The library's command line (``dan_core.cli``) never imports the app: it finds this module through
the ``dan_fer.commands`` entry point declared in ``pyproject.toml``, as pytest finds its plugins.
Qt is imported only when the command runs.
"""

from __future__ import annotations

import argparse

HELP = "the desktop app: live view, attention overlays, timeline, recording"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from app.main import add_arguments as app_arguments  # app.main imports no Qt at module level

    app_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from app.main import options_from_args
    from app.main import run as run_app

    return run_app(options_from_args(args))

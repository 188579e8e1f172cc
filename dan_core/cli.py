"""The ``dan-fer`` command: one entry point, one module per subcommand.

Each command names a module with ``add_arguments(parser)`` and ``run(args) -> int``; modules are
imported only when their subcommand runs, so ``dan-fer train`` never loads OpenCV, MediaPipe or Qt.
The library's own commands are listed in ``COMMANDS``. Commands of higher layers (the desktop app)
register themselves through the ``dan_fer.commands`` entry point group, as pytest finds its plugins,
so this module never imports them: ``[project.entry-points."dan_fer.commands"]`` in pyproject.toml.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from importlib.metadata import entry_points

from dan_core import __version__
from dan_core.errors import DanFerError
from dan_core.signals import exit_status, sigterm_as_interrupt

ENTRY_POINT_GROUP = "dan_fer.commands"

# name -> (module, one-line help): the library's commands (python -m dan_core COMMAND runs them too)
COMMANDS: dict[str, tuple[str, str]] = {
    "train": ("dan_core.commands.train", "train DAN on a dataset (also: torchrun -m dan_core.train)"),
    "eval": ("dan_core.commands.evaluate", "evaluate a .pt or .onnx model on a dataset split"),
    "export": ("dan_core.commands.export", "export a checkpoint to ONNX"),
    "import-checkpoint": ("dan_core.commands.import_checkpoint", "convert an official DAN checkpoint (.pth)"),
    "analyze": ("dan_core.commands.analyze", "video, image, folder or camera -> emotion timeline CSV (+ annotated video)"),
    "bench": ("dan_core.commands.bench", "benchmark the face pipeline on a video: per-stage latency and end-to-end fps"),
    "bench-model": ("dan_core.training.bench_model", "benchmark DAN alone: training images/s and inference ms/face (torch, ONNX Runtime)"),
    "report": ("dan_core.commands.report", "draw a timeline CSV as a picture (probability per class over time)"),
    "batch": ("dan_core.commands.batch", "many videos -> one timeline CSV each and summary.csv (worker processes, resumable)"),
    "bench-batch": ("dan_core.commands.bench_batch", "benchmark batch: the process pool against a local Dask cluster, Dask's cost per "
                    "video, and the throughput model for 10-1,000 hours of video on 1-64 workers"),
}


class OneLineParser(argparse.ArgumentParser):
    """A bad argument is one line (``dan-fer CMD: error: argument --opacity: ...``), like every other error."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def quiet_broken_pipe() -> None:
    """The reader of stdout or stderr went away (``| head``): nothing more can be said, and nothing at exit either."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    for stream in (sys.stdout, sys.stderr):
        try:
            os.dup2(devnull, stream.fileno())
        except (OSError, ValueError):
            pass
    os.close(devnull)


def plugin_commands() -> dict[str, tuple[str, str]]:
    """Commands that installed packages register under ``dan_fer.commands`` (name -> module path)."""
    found = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name not in COMMANDS:
            found[ep.name] = (ep.value, "")
    return found


def all_commands() -> dict[str, tuple[str, str]]:
    commands = {**COMMANDS, **plugin_commands()}
    for name, (module, help_text) in commands.items():
        if not help_text:  # a plugin: its module says what it does (plugins import nothing heavy at module level)
            commands[name] = (module, getattr(importlib.import_module(module), "HELP", ""))
    return commands


def build_parser(commands: dict[str, tuple[str, str]] | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dan-fer", description="Live facial expression recognition with DAN attention maps.")
    parser.add_argument("--version", action="version", version=f"dan-fer {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module, help_text) in (commands or all_commands()).items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(_module=module)
        # arguments are added lazily in main() for the chosen command only
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    name = argv[0] if argv else ""
    commands = COMMANDS if name in COMMANDS else all_commands()
    # parse just the command name first, then let its module define its own arguments
    if name in commands:
        module_name, help_text = commands[name]
        module = importlib.import_module(module_name)
        sub = OneLineParser(prog=f"dan-fer {name}", description=help_text)
        module.add_arguments(sub)
        args = sub.parse_args(argv[1:])
        try:
            with sigterm_as_interrupt():  # kill PID, a closed terminal: a run ends like Ctrl+C, files finished, summary printed
                status = int(module.run(args) or 0)
                sys.stdout.flush()  # a reader that went away is found here, not in the interpreter's exit
                return status
        except DanFerError as exc:
            return _say(f"dan-fer {name}: error: {exc}", 2)
        except KeyboardInterrupt as exc:
            return _say(f"dan-fer {name}: interrupted", exit_status(exc))
        except BrokenPipeError as exc:  # `dan-fer ... --json | head -c0`: the run is over, the reader is gone
            quiet_broken_pipe()
            return exit_status(exc)
    build_parser(commands).parse_args(argv)  # prints help / errors for unknown commands
    return 2


def _say(line: str, status: int) -> int:
    try:
        print(line, file=sys.stderr)
    except BrokenPipeError:
        quiet_broken_pipe()
    return status


if __name__ == "__main__":
    sys.exit(main())

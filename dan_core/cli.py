"""The ``dan-fer`` command: one entry point, one module per subcommand.

Each entry of COMMANDS names a module with ``add_arguments(parser)`` and ``run(args) -> int``;
modules are imported only when their subcommand runs, so ``dan-fer train`` never loads
OpenCV, MediaPipe or Qt.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from dan_core import __version__
from dan_core.errors import DanFerError
from dan_core.signals import exit_status, sigterm_as_interrupt

# name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "train": ("dan_core.commands.train", "train DAN on a dataset (also: torchrun -m dan_core.train)"),
    "eval": ("dan_core.commands.evaluate", "evaluate a .pt or .onnx model on a dataset split"),
    "export": ("dan_core.commands.export", "export a checkpoint to ONNX"),
    "import-checkpoint": ("dan_core.commands.import_checkpoint", "convert an official DAN checkpoint (.pth)"),
    "analyze": ("dan_core.commands.analyze", "video, image, folder or camera -> emotion timeline CSV (+ annotated video)"),
    "bench": ("dan_core.commands.bench", "per-stage latency and end-to-end fps of the face pipeline"),
    "report": ("dan_core.commands.report", "draw a timeline CSV as a picture (probability per class over time)"),
    "app": ("dan_core.commands.app", "the desktop app: live view, attention overlays, timeline, recording"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dan-fer", description="Live facial expression recognition with DAN attention maps.")
    parser.add_argument("--version", action="version", version=f"dan-fer {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(_module=module)
        # arguments are added lazily in main() for the chosen command only
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    # parse just the command name first, then let its module define its own arguments
    if argv and argv[0] in COMMANDS:
        name = argv[0]
        module = importlib.import_module(COMMANDS[name][0])
        sub = argparse.ArgumentParser(prog=f"dan-fer {name}", description=COMMANDS[name][1])
        module.add_arguments(sub)
        args = sub.parse_args(argv[1:])
        try:
            with sigterm_as_interrupt():  # kill PID ends a run like Ctrl+C: files finished, summary printed
                return int(module.run(args) or 0)
        except DanFerError as exc:
            print(f"dan-fer {name}: error: {exc}", file=sys.stderr)
            return 2
        except KeyboardInterrupt as exc:
            print(f"dan-fer {name}: interrupted", file=sys.stderr)
            return exit_status(exc)
    parser.parse_args(argv)  # prints help / errors for unknown commands
    return 2


if __name__ == "__main__":
    sys.exit(main())

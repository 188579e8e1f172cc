"""Start the desktop app: ``dan-fer app`` (or ``python -m app``).

The automation form ``--source PATH --record OUT.csv --exit-after SECONDS --screenshot OUT.png``
runs the window, records, saves a picture of the whole window and exits: 0 when it ran without
a problem shown in the window, 1 otherwise (the problem is also printed).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from app.xcb import check_xcb_libraries  # no Qt: it runs before Qt loads
from dan_core.cli_fields import ranged
from dan_core.pipeline.options import STUDY_FIELDS, add_options, configure_lsl, options_from
from dan_core.pipeline.study import StudyOptions

if TYPE_CHECKING:
    from app.state import AppSettings

ORGANIZATION = "dan-fer"
APPLICATION = "dan-fer"


@dataclass
class Options:
    source: str | None = None
    model: str | None = None
    landmarker: str | None = None
    backend: str | None = None
    precision: str | None = None
    record: str | None = None
    force: bool = False
    exit_after: float | None = None
    screenshot: str | None = None
    heatmap: str | None = None
    opacity: float | None = None
    landmarks: bool | None = None
    blendshapes: bool | None = None
    min_face_confidence: float | None = None
    size: tuple[int, int] | None = None
    settings_file: str | None = None  # an .ini instead of the user's settings (tests, automation)
    study: StudyOptions = field(default_factory=StudyOptions)  # LSL outlets, marker sources (dan_core.pipeline.study)
    review: str | None = None  # a recorded timeline CSV to review instead of the live view


# the library's options the app offers (dan_core.pipeline.options); these apply to one run and default to the saved setting
RUN_FIELDS = ("model", "landmarker", "backend", "precision", "heatmap", "opacity", "landmarks", "blendshapes",
              "min_face_confidence")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--source", help="camera index (0, 1, ...), video file, image or folder of images (default: first camera)")
    parser.add_argument("--record", metavar="OUT.csv", help="start recording the emotion timeline to this CSV at once")
    parser.add_argument("--force", action="store_true", help="overwrite the --record CSV if it exists")
    parser.add_argument("--exit-after", type=ranged(float, 0), metavar="SECONDS",
                        help="quit SECONDS after the first frame is shown (finishing the recording)")
    parser.add_argument("--screenshot", metavar="OUT.png", help="save a picture of the whole window just before quitting")
    parser.add_argument("--size", metavar="WxH", help="window size, e.g. 1280x800")
    parser.add_argument("--settings-file", metavar="INI", help="read and write settings in this .ini instead of the user's settings")
    parser.add_argument("--review", metavar="OUT.csv", help="review a recording: its video, the whole timeline with markers, "
                        "seeking, snapshots and clips")
    add_options(parser, (*RUN_FIELDS, *STUDY_FIELDS), defaults=dict.fromkeys(RUN_FIELDS), unset="the saved setting")
    parser.epilog = f"{', '.join('--' + f for f in RUN_FIELDS)} apply to this run only: the saved settings do not change."


def options_from_args(args: argparse.Namespace) -> Options:
    size = None
    if getattr(args, "size", None):
        try:
            w, h = (int(v) for v in args.size.lower().split("x"))
            size = (w, h)
        except ValueError:
            from dan_core.errors import DanFerError

            raise DanFerError(f"--size must look like 1280x800, got {args.size!r}") from None
    return Options(
        source=args.source, model=args.model, landmarker=args.landmarker, backend=args.backend, precision=args.precision,
        record=args.record,
        force=args.force, exit_after=args.exit_after, screenshot=args.screenshot, heatmap=args.heatmap,
        opacity=args.opacity, landmarks=args.landmarks, blendshapes=args.blendshapes,
        min_face_confidence=args.min_face_confidence, size=size, settings_file=args.settings_file,
        study=options_from(args).study,
        review=getattr(args, "review", None),
    )


def prepare_qt_environment() -> None:
    """cv2 points QT_QPA_PLATFORM_PLUGIN_PATH at its own Qt 5 plugins; PySide6 must use its own."""
    from app._compat import make_singletons_immortal, use_pyside_plugins

    make_singletons_immortal()
    use_pyside_plugins()


def open_store(settings_file: str | None):
    from PySide6.QtCore import QSettings

    if settings_file:
        return QSettings(settings_file, QSettings.Format.IniFormat)
    return QSettings(ORGANIZATION, APPLICATION)


def check_display() -> None:
    """Qt aborts the process when it finds no display; say what to do instead."""
    if sys.platform.startswith("linux") and not os.environ.get("QT_QPA_PLATFORM") \
            and not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
        from dan_core.errors import DanFerError

        raise DanFerError("no display found (DISPLAY and WAYLAND_DISPLAY are unset): run it on a desktop, under xvfb-run, "
                          "or with QT_QPA_PLATFORM=offscreen for --exit-after/--screenshot automation")


def settings_for_run(settings: AppSettings, options: Options) -> AppSettings:
    """The saved settings with this run's command-line values (which are not saved)."""
    for name in RUN_FIELDS:
        value = getattr(options, name)
        if value is not None and value != "" and (not isinstance(value, bool) or value):  # a switch only turns on
            setattr(settings, name, value)
    return settings


def run(options: Options) -> int:
    """Create the QApplication and the window, run the event loop, return the exit status."""
    check_display()
    check_xcb_libraries()  # before the QApplication: Qt aborts when its X11 plugin cannot load
    prepare_qt_environment()
    if options.review:
        from app.areas.review import run_review

        return run_review(options.review, screenshot=options.screenshot, exit_after=options.exit_after, size=options.size)
    from PySide6.QtWidgets import QApplication

    from app.signal_stop import SignalStop
    from app.state import load_settings
    from app.window import MainWindow

    logging.basicConfig(level=logging.WARNING, format="dan-fer app: %(message)s")
    qapp = QApplication.instance() or QApplication(sys.argv[:1])
    qapp.setStyle("Fusion")  # the same look on every platform, and it follows the window's dark palette
    qapp.setOrganizationName(ORGANIZATION)
    qapp.setApplicationName(APPLICATION)

    store = open_store(options.settings_file)
    window = MainWindow(store=store, settings=settings_for_run(load_settings(store), options))
    configure_lsl(options.study)  # process-wide: liblsl is set up once
    if options.study != StudyOptions():  # any study option given: LSL, marker sources
        window.engine.enable_study(options.study)
    if options.size:
        window.resize(*options.size)
    auto = Automation(window, options) if (options.exit_after is not None or options.record or options.screenshot) else None
    window.show()
    if auto is not None:
        auto.connect()
    window.start(options.source)
    if auto is not None:
        auto.begin()
    stop = SignalStop(window, auto)
    try:
        qapp.exec()
        window.shutdown()
    finally:
        stop.restore()
    if stop.signum:
        rec = window.recording.info
        if auto is None and rec is not None and rec.csv_path is not None and not rec.active:
            print(f"dan-fer app: {rec.message or f'recording saved: {rec.csv_path}'}")
        return 128 + stop.signum  # 130 Ctrl+C, 143 SIGTERM, like the shell
    return auto.status if auto is not None else 0


class Automation:
    """--record / --exit-after / --screenshot: drive the window like a user would, then quit."""

    STARTUP_LIMIT_S = 120.0  # no frame and no message by then: give up with status 1

    def __init__(self, window, options: Options) -> None:
        from PySide6.QtCore import QTimer

        self.window = window
        self.options = options
        self.status = 0
        self.problems: list[str] = []
        self._armed = False
        self._timer = QTimer(window)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self._on_timer_timeout)
        self._startup = QTimer(window)
        self._startup.setSingleShot(True)
        self._startup.timeout.connect(self._on_startup_timeout)

    def connect(self) -> None:
        """Before the window starts: a problem may be shown at once (no camera)."""
        self.window.displayed.connect(self._on_window_displayed)
        self.window.problem_shown.connect(self._on_window_problem_shown)

    def begin(self) -> None:
        """After the window started: the recording request queues behind loading the model."""
        w = self.window
        if self.options.record:
            w.recording.start_recording(Path(self.options.record), force=self.options.force)
        self._startup.start(int(self.STARTUP_LIMIT_S * 1000))

    def _arm(self) -> None:
        if self._armed or self.options.exit_after is None:
            return
        self._armed = True
        self._startup.stop()
        self._timer.start(int(max(self.options.exit_after, 0.0) * 1000))

    def _on_window_displayed(self, packet) -> None:
        self._arm()

    def _on_window_problem_shown(self, error) -> None:
        self.problems.append(f"{error.kind}: {error.message}")
        # the window logs the message (logging is set up in run()); here it only decides the exit status
        self.status = 1
        self._arm()  # still leave after SECONDS, with the message visible in the screenshot

    def _on_startup_timeout(self) -> None:
        print("dan-fer app: nothing was shown in time", file=sys.stderr)
        self.status = 1
        self._finish()

    def _on_timer_timeout(self) -> None:
        self._finish()

    def _finish(self) -> None:
        from PySide6.QtWidgets import QApplication

        w = self.window
        if self.options.record and w.recording.is_recording:
            w.recording.stop_recording()
        if self.options.screenshot:
            QApplication.processEvents()
            path = Path(self.options.screenshot)
            path.parent.mkdir(parents=True, exist_ok=True)
            if not w.grab().save(str(path)):
                print(f"dan-fer app: cannot write the screenshot {path}", file=sys.stderr)
                self.status = 1
            else:
                print(f"dan-fer app: screenshot saved to {path}")
        w.shutdown()  # finishes the recording file before the event loop ends
        rec = w.recording.info
        if rec is not None and rec.csv_path is not None and not rec.active:
            print(f"dan-fer app: {rec.message or f'recording saved: {rec.csv_path}'}")
        w.close()
        QApplication.instance().quit()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app", description="dan-fer desktop app")
    add_arguments(parser)
    args = parser.parse_args(argv)
    from dan_core.errors import DanFerError

    try:
        return run(options_from_args(args))
    except DanFerError as exc:
        print(f"dan-fer app: error: {exc}", file=sys.stderr)
        return 2

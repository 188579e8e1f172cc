"""Problems: one banner per kind of problem above the picture, each with the next steps as buttons.

A part of ``MainWindow`` (see app/window.py). The engine reports ``AppError``s; this area says
what to do about them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from PySide6.QtCore import Slot

from app.messages import AppError
from app.widgets import Banner

log = logging.getLogger("app.window")


class ProblemsArea:
    """Banners: errors, warnings and notes, one per kind, cleared when the problem is gone."""

    def banner_texts(self) -> dict[str, str]:
        return {kind: b.text for kind, b in self._banners.items() if not b.isHidden()}

    def banner(self, kind: str) -> Banner | None:
        b = self._banners.get(kind)
        return b if b is not None and not b.isHidden() else None

    @Slot(object)
    def _on_engine_failed(self, error: AppError) -> None:
        if error.kind in ("model", "landmarker", "backend"):
            self.statusBar().clearMessage()
        self._show_problem(error)

    def _problem_actions(self, kind: str) -> tuple[str, list[tuple[str, Callable[[], None]]]]:
        open_file = ("Open video or image…", self._on_open_action_triggered)
        settings = ("Settings…", self._on_settings_action_triggered)
        retry = ("Retry camera", lambda: self.open_source(self._source_spec if self._source_spec and self._source_spec.isdigit() else "0"))
        return {
            "camera": ("Open a video file or an image instead (Ctrl+O, or drop it on the window), or connect a camera and retry.",
                       [open_file, retry]),
            "camera_lost": ("Reconnect the camera and retry, or open a video file.", [retry, open_file]),
            "source": ("Open another video or image.", [open_file]),
            "source_failed": ("Playback stopped at the last good frame. Open another file.", [open_file]),
            "model": ("Choose an .onnx model exported with `dan-fer export` in Settings (or put one in models/).",
                      [("Choose model…", self._on_choose_model), settings]),
            "landmarker": ("Put face_landmarker.task somewhere and choose it in Settings (or set DAN_FER_LANDMARKER).",
                           [("Choose landmarker…", self._on_choose_landmarker), settings]),
            "record": ("Check the record folder in Settings.", [settings]),
            "backend": ("Choose another backend in Settings (auto uses CUDA when it really works, else the CPU).",
                        [("Use auto backend", self._on_use_auto_backend), settings]),
        }.get(kind, ("", []))

    def _show_problem(self, error: AppError) -> None:
        hint, actions = self._problem_actions(error.kind)
        text = error.message.rstrip(".") + "." + (f" {hint}" if hint else "")
        level = "warning" if error.kind in ("source_failed",) else "error"
        self._show_banner(error.kind, level, text, actions)
        self.problem_shown.emit(error)
        if error.kind in ("camera", "source") and self.view.has_frame() is False:
            self.view.set_placeholder("No picture yet. Drop a video or an image here, or use File ▸ Open (Ctrl+O)")
        log.warning("%s: %s", error.kind, error.message)

    def _show_banner(self, kind: str, level: str, text: str, actions: list[tuple[str, Callable[[], None]]]) -> None:
        b = self._banners.get(kind)
        if b is None:
            b = Banner()
            self._banners[kind] = b
            self._banner_box.addWidget(b)
        b.show_message(level, text, actions, kind=kind)

    def _clear_problem(self, kind: str) -> None:
        b = self._banners.get(kind)
        if b is not None:
            b.clear()

"""Problems: one banner per kind of problem above the picture, each with the next steps as buttons.

The engine reports ``AppError``s (so do other areas, through their ``failed`` signals, which the
window connects to ``show``); this area says what to do about them, and clears a banner when the
engine reports that its problem is gone (a source opened, a pipeline loaded).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from PySide6.QtCore import QObject, Signal, Slot
from PySide6.QtWidgets import QStatusBar

from app.engine import Engine
from app.messages import AppError, PipelineInfo, SourceInfo
from app.widgets import BannerStack, VideoView
from app.wiring import Connections

log = logging.getLogger("app.window")

Step = tuple[str, Callable[[], None]]  # a button: its label and what it does


@dataclass(frozen=True)
class ProblemActions:
    """The next steps the banners offer: actions of other areas, handed in by the window."""

    open_file: Callable[[], None]
    retry_camera: Callable[[], None]
    settings: Callable[[], None]
    choose_model: Callable[[], None]
    choose_landmarker: Callable[[], None]
    use_auto_backend: Callable[[], None]


class ProblemsArea(QObject):
    """Banners: errors and warnings, one per kind, cleared when the problem is gone."""

    shown = Signal(object)  # AppError, once its banner is up

    def __init__(self, *, engine: Engine, banners: BannerStack, view: VideoView, status_bar: QStatusBar, actions: ProblemActions,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._banners, self._view, self._status_bar, self._actions = banners, view, status_bar, actions
        self._links = Connections()
        self._links.connect(engine.failed, self._on_engine_failed)
        self._links.connect(engine.source_opened, self._on_engine_source_opened)
        self._links.connect(engine.pipeline_ready, self._on_engine_pipeline_ready)

    def show(self, error: AppError) -> None:
        if error.kind in ("model", "landmarker", "backend"):
            self._status_bar.clearMessage()  # "Loading the model…" is over
        hint, steps = self._next_steps(error.kind)
        text = error.message.rstrip(".") + "." + (f" {hint}" if hint else "")
        level = "warning" if error.kind in ("source_failed",) else "error"
        self._banners.show_message(error.kind, level, text, steps)
        self.shown.emit(error)
        if error.kind in ("camera", "source") and self._view.has_frame() is False:
            self._view.set_placeholder("No picture yet. Drop a video or an image here, or use File ▸ Open (Ctrl+O)")
        log.warning("%s: %s", error.kind, error.message)

    def detach(self) -> None:
        self._links.disconnect_all()

    def _next_steps(self, kind: str) -> tuple[str, list[Step]]:
        a = self._actions
        open_file = ("Open video or image…", a.open_file)
        settings = ("Settings…", a.settings)
        retry = ("Retry camera", a.retry_camera)
        return {
            "camera": ("Open a video file or an image instead (Ctrl+O, or drop it on the window), or connect a camera and retry.",
                       [open_file, retry]),
            "camera_lost": ("Reconnect the camera and retry, or open a video file.", [retry, open_file]),
            "source": ("Open another video or image.", [open_file]),
            "source_failed": ("Playback stopped at the last good frame. Open another file.", [open_file]),
            "model": ("Choose an .onnx model exported with `dan-fer export` in Settings (or put one in models/).",
                      [("Choose model…", a.choose_model), settings]),
            "landmarker": ("Put face_landmarker.task somewhere and choose it in Settings (or set DAN_FER_LANDMARKER).",
                           [("Choose landmarker…", a.choose_landmarker), settings]),
            "record": ("Check the record folder in Settings.", [settings]),
            "backend": ("Choose another backend in Settings (auto uses CUDA when it really works, else the CPU).",
                        [("Use auto backend", a.use_auto_backend), settings]),
        }.get(kind, ("", []))

    @Slot(object)
    def _on_engine_failed(self, error: AppError) -> None:
        self.show(error)

    @Slot(object)
    def _on_engine_source_opened(self, info: SourceInfo) -> None:
        self._banners.clear("camera", "camera_lost", "source", "source_failed")

    @Slot(object)
    def _on_engine_pipeline_ready(self, info: PipelineInfo) -> None:
        self._banners.clear("model", "landmarker", "backend")

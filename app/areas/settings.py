"""Settings: the settings dialog, the pipeline they load, and the one-click fixes the banners offer.

Changing the model, landmarker, backend, precision, face count, smoothing, face confidence or blendshapes
rebuilds the engine's pipeline (``PIPELINE_SETTINGS``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal, Slot
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import QFileDialog, QStatusBar, QWidget

from app.engine import Engine
from app.messages import SourceInfo
from app.state import AppSettings, Preferences
from app.widgets import SettingsDialog
from app.wiring import Connections, make_action
from dan_core.pipeline import PipelineConfig
from dan_core.pipeline.sources import source_mode


def pipeline_config(settings: AppSettings, *, mode: str = "video") -> PipelineConfig:
    return PipelineConfig(
        model=settings.model or None,
        landmarker=settings.landmarker or None,
        backend=settings.backend,
        precision=settings.precision,
        max_faces=settings.max_faces,
        smoothing=settings.smoothing,
        min_face_confidence=settings.min_face_confidence,
        blendshapes=settings.blendshapes,
        mode=mode,
        threads=1,  # one ONNX Runtime thread: MediaPipe detects the next frame on the other core (see Engine.run)
    )


PIPELINE_SETTINGS = ("model", "landmarker", "backend", "precision", "max_faces", "smoothing", "min_face_confidence", "blendshapes")


class SettingsArea(QObject):
    """The settings dialog and the model the settings load. ``window`` is the dialogs' parent."""

    applied = Signal(object)  # AppSettings, once they are in use and saved

    def __init__(self, *, engine: Engine, prefs: Preferences, status_bar: QStatusBar, window: QWidget) -> None:
        super().__init__(window)
        self._engine, self._prefs, self._status_bar, self._window = engine, prefs, status_bar, window
        self._mode = "video"  # the landmarker mode the open source needs
        self.edit_action = make_action(self, "Se&ttings…", QKeySequence.StandardKey.Preferences, self.edit)
        self._links = Connections()
        self._links.connect(engine.source_opened, self._on_engine_source_opened)

    def configure_engine(self, *, opening: str | None = None) -> None:
        """(Re)build the pipeline for the open source, or for ``opening``, the source about to open."""
        mode = source_mode(opening) if opening is not None else self._mode
        self._status_bar.showMessage("Loading the model and the face landmarker…")  # stays until ready or failed
        self._engine.configure(pipeline_config(self._prefs.current, mode=mode))

    @Slot()
    def edit(self) -> None:
        dialog = SettingsDialog(self._prefs.current, self._window)
        if dialog.exec():
            self.apply(dialog.result_settings())

    def apply(self, new: AppSettings) -> None:
        old = self._prefs.replace(new)
        self.applied.emit(self._prefs.current)
        if any(getattr(old, k) != getattr(self._prefs.current, k) for k in PIPELINE_SETTINGS):
            self.configure_engine()

    @Slot()
    def choose_model(self) -> None:
        self._choose_file("model", "Choose a DAN model", "ONNX models (*.onnx);;All files (*)")

    @Slot()
    def choose_landmarker(self) -> None:
        self._choose_file("landmarker", "Choose face_landmarker.task", "MediaPipe task (*.task);;All files (*)")

    @Slot()
    def use_auto_backend(self) -> None:
        self._apply_changed(backend="auto")

    def detach(self) -> None:
        self._links.disconnect_all()

    def _apply_changed(self, **changes: Any) -> None:
        """Apply the current settings with a few fields changed (the banners' one-click fixes)."""
        self.apply(AppSettings(**{**self._prefs.current.to_mapping(), **changes}))

    def _choose_file(self, field: str, title: str, file_filter: str) -> None:
        """Ask for a file for the setting ``field`` (model, landmarker) and apply it."""
        start = getattr(self._prefs.current, field) or str(Path.home())
        path, _ = QFileDialog.getOpenFileName(self._window, title, start, file_filter)
        if path:
            self._apply_changed(**{field: path})

    @Slot(object)
    def _on_engine_source_opened(self, info: SourceInfo) -> None:
        self._mode = info.mode

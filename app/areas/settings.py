"""Settings: the settings dialog, where they are stored, and the one-click fixes the banners offer.

A part of ``MainWindow`` (see app/window.py). Changing the model, landmarker, backend, face count
or smoothing rebuilds the engine's pipeline.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QSettings, Slot
from PySide6.QtWidgets import QFileDialog

from app.messages import PipelineInfo
from app.state import AppSettings
from app.widgets import SettingsDialog
from dan_core.pipeline import PipelineConfig
from dan_core.pipeline.heatmap import heatmap_modes


def load_settings(store: QSettings) -> AppSettings:
    return AppSettings.from_mapping(lambda key: store.value(key))


def save_settings(store: QSettings, settings: AppSettings, keys: tuple[str, ...] | None = None) -> None:
    values = settings.to_mapping()
    for key in keys or tuple(values):
        store.setValue(key, values[key])
    store.sync()


def pipeline_config(settings: AppSettings, *, mode: str = "video") -> PipelineConfig:
    return PipelineConfig(
        model=settings.model or None,
        landmarker=settings.landmarker or None,
        backend=settings.backend,
        max_faces=settings.max_faces,
        smoothing=settings.smoothing,
        mode=mode,
        threads=1,  # one ONNX Runtime thread: MediaPipe detects the next frame on the other core (see Engine.run)
    )


class SettingsArea:
    """The persisted settings and the model they load."""

    def _configure_engine(self, *, mode: str | None = None) -> None:
        """(Re)build the pipeline; ``mode`` defaults to what the open source needs (the engine adapts it on open)."""
        if mode is None:
            mode = self._source.mode if self._source is not None else "video"
        self.statusBar().showMessage("Loading the model and the face landmarker…")  # stays until ready or failed
        self.engine.configure(pipeline_config(self.settings, mode=mode))

    @Slot(object)
    def _on_engine_pipeline_ready(self, info: PipelineInfo) -> None:
        self._pipeline = info
        for kind in ("model", "landmarker", "backend"):
            self._clear_problem(kind)
        self._num_heads = info.num_heads
        self._set_classes(info.class_names)
        self.backend_label.setText(f"backend: {info.backend}")
        trained = f"{info.train_dataset}, " if info.train_dataset else ""
        self.model_label.setText(f"model: {info.model_name} ({trained}{len(info.class_names)} classes, {info.num_heads} heads)")
        self.model_label.setToolTip("classes: " + ", ".join(info.class_names))
        self.statusBar().showMessage(f"Ready: {info.model_name} on {info.backend}", 3000)
        if self.settings.heatmap not in heatmap_modes(info.num_heads):
            self.settings.heatmap = "fused"
            self.engine.set_options(heatmap="fused")

        self._fill_heatmap_combo()

    @Slot()
    def _on_settings_action_triggered(self) -> None:
        dialog = SettingsDialog(self.settings, self)
        if dialog.exec():
            self.apply_settings(dialog.result_settings())

    def apply_settings(self, new: AppSettings) -> None:
        old, self.settings = self.settings, new.validated()
        save_settings(self._store, self.settings)
        self._timeline.seconds = self.settings.timeline_seconds
        self.timeline.set_seconds(self.settings.timeline_seconds)
        if (old.model, old.landmarker, old.backend, old.max_faces, old.smoothing) != (
            new.model, new.landmarker, new.backend, new.max_faces, new.smoothing
        ):
            self._configure_engine()

    def _apply_changed(self, **changes: Any) -> None:
        """Apply the current settings with a few fields changed (the banners' one-click fixes)."""
        self.apply_settings(AppSettings(**{**self.settings.to_mapping(), **changes}))

    def _choose_file(self, field: str, title: str, file_filter: str) -> None:
        """Ask for a file for the setting ``field`` (model, landmarker) and apply it."""
        path, _ = QFileDialog.getOpenFileName(self, title, getattr(self.settings, field) or str(Path.home()), file_filter)
        if path:
            self._apply_changed(**{field: path})

    @Slot()
    def _on_choose_model(self) -> None:
        self._choose_file("model", "Choose a DAN model", "ONNX models (*.onnx);;All files (*)")

    @Slot()
    def _on_use_auto_backend(self) -> None:
        self._apply_changed(backend="auto")

    @Slot()
    def _on_choose_landmarker(self) -> None:
        self._choose_file("landmarker", "Choose face_landmarker.task", "MediaPipe task (*.task);;All files (*)")

"""The settings dialog: model, landmarker, backend, precision, smoothing, faces, face confidence, blendshapes,
record folder."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Slot
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QWidget,
)

import app._compat  # noqa: F401  (first: PySide6 6.12 on Python 3.11, see app/_compat.py)
from app.state import MAX_FACES_LIMIT, MAX_SMOOTHING, AppSettings
from dan_core.pipeline.backends import BACKENDS
from dan_core.pipeline.precision import PRECISIONS


class _PathEdit(QWidget):
    def __init__(self, value: str, *, placeholder: str, file_filter: str | None, directory: bool = False) -> None:
        super().__init__()
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        self.edit = QLineEdit(value)
        self.edit.setPlaceholderText(placeholder)
        self.edit.setClearButtonEnabled(True)
        btn = QPushButton("Browse…")
        btn.clicked.connect(self._on_browse_clicked)
        lay.addWidget(self.edit, 1)
        lay.addWidget(btn)
        self._filter = file_filter
        self._directory = directory

    @Slot()
    def _on_browse_clicked(self) -> None:
        start = self.edit.text() or str(Path.home())
        if self._directory:
            path = QFileDialog.getExistingDirectory(self, "Choose a folder", start)
        else:
            path, _ = QFileDialog.getOpenFileName(self, "Choose a file", start, self._filter or "")
        if path:
            self.edit.setText(path)

    def value(self) -> str:
        return self.edit.text().strip()


class SettingsDialog(QDialog):
    """Model, landmarker, backend, smoothing, max faces, face confidence, blendshapes, record folder."""

    def __init__(self, settings: AppSettings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("dan-fer settings")
        self.setMinimumWidth(520)
        form = QFormLayout(self)
        self.model = _PathEdit(settings.model, placeholder="default: the model in models/",
                               file_filter="ONNX models (*.onnx);;All files (*)")
        self.landmarker = _PathEdit(settings.landmarker, placeholder="default: $DAN_FER_LANDMARKER, cache or download",
                                    file_filter="MediaPipe task (*.task);;All files (*)")
        self.backend = QComboBox()
        self.backend.addItems(list(BACKENDS))
        self.backend.setCurrentText(settings.backend)
        self.precision = QComboBox()
        self.precision.addItems(list(PRECISIONS))
        self.precision.setCurrentText(settings.precision)
        self.precision.setToolTip("int8: the model's int8 twin (about 3x faster on CPUs with VNNI); auto: int8 where it helps")
        self.smoothing = QDoubleSpinBox()
        self.smoothing.setRange(0.0, MAX_SMOOTHING)
        self.smoothing.setSingleStep(0.05)
        self.smoothing.setValue(settings.smoothing)
        self.smoothing.setToolTip("Weight of the previous probabilities per face (0 = no smoothing)")
        self.max_faces = QSpinBox()
        self.max_faces.setRange(1, MAX_FACES_LIMIT)
        self.max_faces.setValue(settings.max_faces)
        self.min_face_confidence = QDoubleSpinBox()
        self.min_face_confidence.setRange(0.05, 1.0)
        self.min_face_confidence.setSingleStep(0.05)
        self.min_face_confidence.setValue(settings.min_face_confidence)
        self.min_face_confidence.setToolTip("MediaPipe's face detection confidence: lower finds more faces, and more false ones")
        self.blendshapes = QCheckBox("also record facial movements (MediaPipe's 52 blendshapes; not FACS action units)")
        self.blendshapes.setChecked(settings.blendshapes)
        self.timeline = QSpinBox()
        self.timeline.setRange(5, 300)
        self.timeline.setSuffix(" s")
        self.timeline.setValue(settings.timeline_seconds)
        self.record_dir = _PathEdit(settings.record_dir, placeholder="folder for recordings and snapshots", file_filter=None,
                                    directory=True)
        self.record_video = QCheckBox("also record the annotated video (.mp4)")
        self.record_video.setChecked(settings.record_video)
        form.addRow("Model (.onnx)", self.model)
        form.addRow("Face landmarker (.task)", self.landmarker)
        form.addRow("Backend", self.backend)
        form.addRow("Precision", self.precision)
        form.addRow("Smoothing", self.smoothing)
        form.addRow("Max faces", self.max_faces)
        form.addRow("Min face confidence", self.min_face_confidence)
        form.addRow("", self.blendshapes)
        form.addRow("Timeline length", self.timeline)
        form.addRow("Record folder", self.record_dir)
        form.addRow("", self.record_video)
        self.marker_labels = QLineEdit(settings.marker_labels)
        self.marker_labels.setPlaceholderText("1=stimulus on; 2=stimulus off  (keys 1-9 while recording; M asks)")
        form.addRow("Marker labels", self.marker_labels)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)
        self._base = settings

    def result_settings(self) -> AppSettings:
        s = AppSettings(**self._base.to_mapping())
        s.model = self.model.value()
        s.landmarker = self.landmarker.value()
        s.backend = self.backend.currentText()
        s.precision = self.precision.currentText()
        s.smoothing = float(self.smoothing.value())
        s.max_faces = int(self.max_faces.value())
        s.min_face_confidence = float(self.min_face_confidence.value())
        s.blendshapes = self.blendshapes.isChecked()
        s.timeline_seconds = int(self.timeline.value())
        s.record_dir = self.record_dir.value() or self._base.record_dir
        s.record_video = self.record_video.isChecked()
        s.marker_labels = self.marker_labels.text().strip()
        return s.validated()

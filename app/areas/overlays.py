"""Overlays and heads: the attention overlay mode and opacity, landmarks, probability bars, the
selected face with its probability panel, attention tiles and timeline.

A part of ``MainWindow`` (see app/window.py); it reads and writes the window's widgets and state.
"""

from __future__ import annotations

import time

from PySide6.QtCore import Qt, Slot
from PySide6.QtWidgets import QCheckBox, QComboBox, QHBoxLayout, QLabel, QSlider

from app.areas.settings import save_settings
from app.messages import Packet
from app.state import TimelineBuffer, face_at, pick_default_face
from dan_core.pipeline.draw import class_colors
from dan_core.pipeline.heatmap import heatmap_label, heatmap_modes, next_heatmap_mode, valid_heatmap_mode


class OverlaysArea:
    """What is drawn over the picture and which face the side panel and the timeline follow."""

    def _build_overlay_controls(self, controls: QHBoxLayout) -> None:
        self.heatmap_combo = QComboBox()
        self.heatmap_combo.setToolTip("Attention overlay (H cycles)")
        self.heatmap_combo.activated.connect(self._on_heatmap_combo_activated)
        self.opacity_slider = QSlider(Qt.Orientation.Horizontal)
        self.opacity_slider.setRange(0, 100)
        self.opacity_slider.setValue(int(round(self.settings.opacity * 100)))
        self.opacity_slider.setFixedWidth(90)
        self.opacity_slider.setToolTip("Overlay opacity")
        self.opacity_slider.valueChanged.connect(self._on_opacity_slider_value_changed)
        self.landmarks_check = QCheckBox("Landmarks")
        self.landmarks_check.setChecked(self.settings.landmarks)
        self.landmarks_check.toggled.connect(self._on_landmarks_check_toggled)
        for w in (self.heatmap_combo, self.opacity_slider, self.landmarks_check):
            w.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # keys belong to the window's shortcuts
        controls.addWidget(QLabel("Attention"))
        controls.addWidget(self.heatmap_combo)
        controls.addWidget(self.opacity_slider)
        controls.addWidget(self.landmarks_check)

    @property
    def heatmap_mode(self) -> str:
        return self.settings.heatmap

    def set_heatmap_mode(self, mode: str) -> None:
        mode = valid_heatmap_mode(mode, self._num_heads)
        self.settings.heatmap = mode
        idx = self.heatmap_combo.findData(mode)
        if idx >= 0:
            self.heatmap_combo.setCurrentIndex(idx)
        self.engine.set_options(heatmap=mode)
        save_settings(self._store, self.settings, ("heatmap",))
        self.statusBar().showMessage(f"Attention overlay: {heatmap_label(mode)}", 2000)

    @property
    def selected_face(self) -> int | None:
        return self._selected

    def _show_faces(self, packet: Packet) -> None:
        """The side panel (probabilities, attention tiles) and the timeline follow the selected face."""
        result = packet.result
        if result is None:
            return
        faces = result.faces
        boxes = [(f.face_id, f.box) for f in faces]
        selected = pick_default_face(boxes, self._selected)
        if selected != self._selected:
            self._selected = selected
            self.engine.set_options(selected_id=selected)
        self.probs.set_faces([(f.face_id, f.probs, f.dominant, f.confidence) for f in faces], self._selected)
        self.heads.set_strip(packet.heads, self._num_heads, packet.heads_face_id)
        now = time.monotonic()
        for f in faces:
            if f.face_id == self._selected:
                self._timeline.add(now, f.face_id, f.probs)
        if now - self._timeline_drawn >= 0.1:  # 10 Hz: the chart need not repaint at the video's rate
            self._timeline_drawn = now
            t, p = self._timeline.series(now)
            still = self._source is not None and self._source.is_still
            self.timeline.set_series(t, p, self._timeline.face_id, note="(a still image has no timeline)" if still else "")
            self._draw_markers()

    @Slot(int)
    def _on_heatmap_combo_activated(self, index: int) -> None:
        self.set_heatmap_mode(str(self.heatmap_combo.itemData(index)))

    @Slot()
    def _on_heatmap_action_triggered(self) -> None:
        self.set_heatmap_mode(next_heatmap_mode(self.settings.heatmap, self._num_heads))

    @Slot(int)
    def _on_opacity_slider_value_changed(self, value: int) -> None:
        self.settings.opacity = value / 100.0
        self.engine.set_options(opacity=self.settings.opacity)
        save_settings(self._store, self.settings, ("opacity",))

    @Slot(bool)
    def _on_landmarks_check_toggled(self, on: bool) -> None:
        self.settings.landmarks = on
        self.engine.set_options(landmarks=on)
        save_settings(self._store, self.settings, ("landmarks",))

    @Slot()
    def _on_face_bars_action_triggered(self) -> None:
        self.settings.face_bars = self.face_bars_action.isChecked()
        self.engine.set_options(face_bars=self.settings.face_bars)
        save_settings(self._store, self.settings, ("face_bars",))

    @Slot(int, int)
    def _on_view_view_resized(self, width: int, height: int) -> None:
        self.engine.set_options(view_size=(width, height))

    @Slot(float, float)
    def _on_view_frame_clicked(self, x: float, y: float) -> None:
        p = self._last_packet
        if p is None or p.result is None:
            return
        face_id = face_at([(f.face_id, f.box) for f in p.result.faces], x, y)
        if face_id is not None:
            self._select_face(face_id)

    @Slot(int)
    def _select_face(self, face_id: int) -> None:
        self._selected = face_id
        self._timeline.clear()
        self.engine.set_options(selected_id=face_id)
        self.statusBar().showMessage(f"Face {face_id} selected", 2000)

    def _set_classes(self, class_names: tuple[str, ...]) -> None:
        self._class_names = tuple(class_names)
        self._colors = _class_colors(self._class_names)
        self.probs.set_classes(self._class_names, self._colors)
        self.timeline.set_classes(self._class_names, self._colors)
        self._timeline = TimelineBuffer(len(self._class_names), self.settings.timeline_seconds)
        self._fill_heatmap_combo()

    def _fill_heatmap_combo(self) -> None:
        self.heatmap_combo.clear()
        for mode in heatmap_modes(self._num_heads):
            self.heatmap_combo.addItem(heatmap_label(mode), mode)
        idx = self.heatmap_combo.findData(self.settings.heatmap)
        self.heatmap_combo.setCurrentIndex(max(idx, 0))


def _class_colors(class_names: tuple[str, ...]) -> dict[str, tuple[int, int, int]]:
    """The pipeline's colours, so a class looks the same in the picture, the bars and the timeline."""
    return {n: tuple(int(v) for v in c) for n, c in class_colors(class_names).items()}

"""Overlays and heads: the attention overlay mode and opacity, landmarks, probability bars, the
selected face with its probability panel, attention tiles and timeline."""

from __future__ import annotations

import time

from PySide6.QtCore import QObject, Qt, Signal, Slot
from PySide6.QtWidgets import QCheckBox, QComboBox, QHBoxLayout, QLabel, QScrollArea, QSlider, QStatusBar, QVBoxLayout, QWidget

from app.engine import Engine
from app.messages import Packet, PipelineInfo, SourceInfo
from app.state import AppSettings, Preferences, TimelineBuffer, face_at, pick_default_face
from app.widgets import HeadsView, ProbabilityPanel, TimelinePlot, VideoView
from app.wiring import Connections, make_action
from dan_core.classes import FERPLUS
from dan_core.pipeline.draw import class_colors
from dan_core.pipeline.heatmap import heatmap_label, heatmap_modes, next_heatmap_mode, valid_heatmap_mode

DEFAULT_CLASSES = FERPLUS  # shown until the model says what its classes are


class OverlaysArea(QObject):
    """What is drawn over the picture and which face the side panel and the timeline follow.

    Builds the side panel (``panel``: attention tiles over probability bars); draws the selected
    face's probabilities into ``timeline``; a click on ``view`` selects the face under it.
    """

    timeline_drawn = Signal(float)  # the timeline was redrawn up to this media time (markers are drawn against it)

    def __init__(self, *, engine: Engine, prefs: Preferences, view: VideoView, timeline: TimelinePlot, status_bar: QStatusBar,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._engine, self._prefs, self._view, self._timeline, self._status_bar = engine, prefs, view, timeline, status_bar
        self._class_names: tuple[str, ...] = DEFAULT_CLASSES
        self._num_heads = 4
        self._selected: int | None = None
        self._faces: list = []  # the faces of the frame on screen (a click picks among them)
        self._still = False
        self._buffer = TimelineBuffer(len(self._class_names), prefs.current.timeline_seconds)
        self._drawn_at = 0.0
        self._build_controls()
        self._build_panel()
        self.heatmap_action = make_action(self, "Next &heatmap mode", "H", self._on_heatmap_action_triggered)
        self.landmarks_action = make_action(self, "&Landmarks", "L", self._on_landmarks_action_triggered)
        self.face_bars_action = make_action(self, "Probability &bars beside faces", "B", self._on_face_bars_action_triggered)
        self.face_bars_action.setCheckable(True)
        self.face_bars_action.setChecked(prefs.current.face_bars)
        view.frame_clicked.connect(self._on_view_frame_clicked)
        view.view_resized.connect(self._on_view_view_resized)
        self._links = Connections()
        self._links.connect(engine.source_opened, self._on_engine_source_opened)
        self._links.connect(engine.pipeline_ready, self._on_engine_pipeline_ready)
        self._set_classes(self._class_names)

    def _build_controls(self) -> None:
        settings = self._prefs.current
        self.heatmap_combo = QComboBox()
        self.heatmap_combo.setToolTip("Attention overlay (H cycles)")
        self.heatmap_combo.activated.connect(self._on_heatmap_combo_activated)
        self.opacity_slider = QSlider(Qt.Orientation.Horizontal)
        self.opacity_slider.setRange(0, 100)
        self.opacity_slider.setValue(int(round(settings.opacity * 100)))
        self.opacity_slider.setFixedWidth(90)
        self.opacity_slider.setToolTip("Overlay opacity")
        self.opacity_slider.valueChanged.connect(self._on_opacity_slider_value_changed)
        self.landmarks_check = QCheckBox("Landmarks")
        self.landmarks_check.setChecked(settings.landmarks)
        self.landmarks_check.toggled.connect(self._on_landmarks_check_toggled)
        for w in (self.heatmap_combo, self.opacity_slider, self.landmarks_check):
            w.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # keys belong to the window's shortcuts

    def add_controls(self, row: QHBoxLayout) -> None:
        row.addWidget(QLabel("Attention"))
        row.addWidget(self.heatmap_combo)
        row.addWidget(self.opacity_slider)
        row.addWidget(self.landmarks_check)

    def _build_panel(self) -> None:
        self.probs = ProbabilityPanel()
        self.probs.face_clicked.connect(self.select_face)
        self.heads = HeadsView()
        side = QWidget()
        side_layout = QVBoxLayout(side)
        side_layout.setContentsMargins(0, 0, 0, 0)
        side_layout.addWidget(self.heads)
        side_layout.addWidget(self.probs)
        side_layout.addStretch(1)
        self.panel = QScrollArea()
        self.panel.setWidget(side)
        self.panel.setWidgetResizable(True)
        self.panel.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.panel.setMinimumWidth(3 * HeadsView.TILE + 40)  # three attention tiles side by side, and a scroll bar
        self.panel.setMaximumWidth(420)
        self.panel.setFocusPolicy(Qt.FocusPolicy.NoFocus)

    # ---------------------------------------------------------------------------------- actions
    def send_options(self) -> None:
        """Tell the engine how to draw: the overlay settings and the view's size."""
        s = self._prefs.current
        self._engine.set_options(heatmap=s.heatmap, opacity=s.opacity, landmarks=s.landmarks, face_bars=s.face_bars,
                                 view_size=self._view.device_size())

    @property
    def heatmap_mode(self) -> str:
        return self._prefs.current.heatmap

    @property
    def num_heads(self) -> int:
        return self._num_heads

    def set_heatmap_mode(self, mode: str) -> None:
        mode = valid_heatmap_mode(mode, self._num_heads)
        self._prefs.change(heatmap=mode)
        idx = self.heatmap_combo.findData(mode)
        if idx >= 0:
            self.heatmap_combo.setCurrentIndex(idx)
        self._engine.set_options(heatmap=mode)
        self._status_bar.showMessage(f"Attention overlay: {heatmap_label(mode)}", 2000)

    @property
    def selected_face(self) -> int | None:
        return self._selected

    @Slot(int)
    def select_face(self, face_id: int) -> None:
        self._selected = face_id
        self._buffer.clear()
        self._engine.set_options(selected_id=face_id)
        self._status_bar.showMessage(f"Face {face_id} selected", 2000)

    def forget_faces(self) -> None:
        """A new source: no face selected, an empty timeline."""
        self._buffer.clear()
        self._selected = None
        self._engine.set_options(selected_id=None)

    def follow_settings(self, settings: AppSettings) -> None:
        self._buffer.seconds = settings.timeline_seconds
        self._timeline.set_seconds(settings.timeline_seconds)

    @property
    def timeline_buffer(self) -> TimelineBuffer:
        """The selected face's recent probabilities, as drawn in the timeline."""
        return self._buffer

    def show(self, packet: Packet) -> None:
        """The side panel (probabilities, attention tiles) and the timeline follow the selected face."""
        result = packet.result
        if result is None:
            self._faces = []
            return
        faces = self._faces = result.faces
        selected = pick_default_face([(f.face_id, f.box) for f in faces], self._selected)
        if selected != self._selected:
            self._selected = selected
            self._engine.set_options(selected_id=selected)
        self.probs.set_faces([(f.face_id, f.probs, f.dominant, f.confidence) for f in faces], self._selected)
        self.heads.set_strip(packet.heads, self._num_heads, packet.heads_face_id)
        media = packet.media_time_s  # curves and markers on one clock: the frames' own, which stops when they stop
        for f in faces:
            if f.face_id == self._selected:
                self._buffer.add(media, f.face_id, f.probs)
        wall = time.monotonic()
        if wall - self._drawn_at >= 0.1:  # 10 Hz: the chart need not repaint at the video's rate
            self._drawn_at = wall
            t, p = self._buffer.series(media)
            self._timeline.set_series(t, p, self._buffer.face_id, note="(a still image has no timeline)" if self._still else "")
            self.timeline_drawn.emit(media)

    def detach(self) -> None:
        self._links.disconnect_all()

    # ------------------------------------------------------------------------------------ slots
    @Slot(object)
    def _on_engine_source_opened(self, info: SourceInfo) -> None:
        self._still = info.is_still

    @Slot(object)
    def _on_engine_pipeline_ready(self, info: PipelineInfo) -> None:
        self._num_heads = info.num_heads
        self._set_classes(info.class_names)
        if self._prefs.current.heatmap not in heatmap_modes(info.num_heads):
            self._prefs.change(persist=False, heatmap="fused")  # this model has fewer heads; the stored choice stays
            self._engine.set_options(heatmap="fused")
        self._fill_heatmap_combo()

    @Slot(int)
    def _on_heatmap_combo_activated(self, index: int) -> None:
        self.set_heatmap_mode(str(self.heatmap_combo.itemData(index)))

    @Slot()
    def _on_heatmap_action_triggered(self) -> None:
        self.set_heatmap_mode(next_heatmap_mode(self._prefs.current.heatmap, self._num_heads))

    @Slot()
    def _on_landmarks_action_triggered(self) -> None:
        self.landmarks_check.toggle()

    @Slot(int)
    def _on_opacity_slider_value_changed(self, value: int) -> None:
        self._prefs.change(opacity=value / 100.0)
        self._engine.set_options(opacity=self._prefs.current.opacity)

    @Slot(bool)
    def _on_landmarks_check_toggled(self, on: bool) -> None:
        self._prefs.change(landmarks=on)
        self._engine.set_options(landmarks=on)

    @Slot()
    def _on_face_bars_action_triggered(self) -> None:
        self._prefs.change(face_bars=self.face_bars_action.isChecked())
        self._engine.set_options(face_bars=self._prefs.current.face_bars)

    @Slot(int, int)
    def _on_view_view_resized(self, width: int, height: int) -> None:
        self._engine.set_options(view_size=(width, height))

    @Slot(float, float)
    def _on_view_frame_clicked(self, x: float, y: float) -> None:
        face_id = face_at([(f.face_id, f.box) for f in self._faces], x, y)
        if face_id is not None:
            self.select_face(face_id)

    @property
    def class_names(self) -> tuple[str, ...]:
        return self._class_names

    def _set_classes(self, class_names: tuple[str, ...]) -> None:
        self._class_names = tuple(class_names)
        colors = {n: tuple(int(v) for v in c) for n, c in class_colors(self._class_names).items()}  # as in the picture
        self.probs.set_classes(self._class_names, colors)
        self._timeline.set_classes(self._class_names, colors)
        self._buffer = TimelineBuffer(len(self._class_names), self._prefs.current.timeline_seconds)
        self._fill_heatmap_combo()

    def _fill_heatmap_combo(self) -> None:
        self.heatmap_combo.clear()
        for mode in heatmap_modes(self._num_heads):
            self.heatmap_combo.addItem(heatmap_label(mode), mode)
        idx = self.heatmap_combo.findData(self._prefs.current.heatmap)
        self.heatmap_combo.setCurrentIndex(max(idx, 0))

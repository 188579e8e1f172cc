"""The main window: wires the areas (app/areas/) to the engine's signals; every request goes back to the Engine.

The window only paints what the engine sends (``Packet``s, ``app.messages``) and forwards what the
user asks for. Each area of the window lives in a module of its own: sources and playback,
overlays and heads, recording, settings, problems.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QSettings, Qt, QThread, QTimer, Signal, Slot
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QHBoxLayout, QLabel, QMainWindow, QScrollArea, QSizePolicy, QSplitter, QVBoxLayout, QWidget

import app._compat  # noqa: F401  (first: PySide6 6.12 on Python 3.11, see app/_compat.py)
from app.areas.markers import MarkersArea
from app.areas.overlays import OverlaysArea
from app.areas.problems import ProblemsArea
from app.areas.recording import RecordingArea
from app.areas.review import ReviewArea
from app.areas.settings import SettingsArea, load_settings, pipeline_config, save_settings
from app.areas.sources import SourcesArea
from app.engine import Engine
from app.messages import Packet, PipelineInfo, RecordingInfo, SourceInfo
from app.state import AppSettings, TimelineBuffer
from app.widgets import Banner, HeadsView, ProbabilityPanel, TimelinePlot, VideoView, dark_palette
from dan_core.classes import FERPLUS
from dan_core.pipeline.handoff import RateMeter

log = logging.getLogger(__name__)

DEFAULT_CLASSES = FERPLUS  # shown until the model says what its classes are
__all__ = ["MainWindow", "load_settings", "pipeline_config", "save_settings"]


class EngineThread(QThread):
    """Runs ``Engine.run`` (the engine has its own command queue; no Qt event loop is needed there)."""

    def __init__(self, engine: Engine) -> None:
        super().__init__()
        self.engine = engine
        self.setObjectName("dan-fer-engine")

    def run(self) -> None:
        self.engine.run()


class MainWindow(SourcesArea, OverlaysArea, RecordingArea, MarkersArea, ReviewArea, SettingsArea, ProblemsArea, QMainWindow):
    """``dan-fer app``. Dependencies are keyword-only so tests can hand in their own."""

    displayed = Signal(object)  # Packet, after it was painted (tests and the benchmark listen)
    problem_shown = Signal(object)  # AppError, once its banner is up

    def __init__(
        self,
        *,
        store: QSettings,
        settings: AppSettings | None = None,
        engine: Engine | None = None,
        cameras: list[tuple[int, str]] | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("dan-fer · facial expressions with DAN attention")
        self.setAcceptDrops(True)
        self._store = store
        self.settings = (settings or load_settings(store)).validated()
        self.engine = engine or Engine()
        self._cameras = cameras
        self._class_names: tuple[str, ...] = DEFAULT_CLASSES
        self._colors: dict[str, tuple[int, int, int]] = {}
        self._num_heads = 4
        self._pipeline: PipelineInfo | None = None
        self._source: SourceInfo | None = None
        self._source_spec: str | None = None
        self._paused = False
        self._ended = False
        self._selected: int | None = None
        self._recording: RecordingInfo | None = None
        self._record_started = 0.0
        self._last_packet: Packet | None = None
        self._displayed = RateMeter()
        self._latency_ms = 0.0
        self._timeline = TimelineBuffer(len(self._class_names), self.settings.timeline_seconds)
        self._timeline_drawn = 0.0
        self._seek_dragging = False
        self._closing = False
        self._banners: dict[str, Banner] = {}

        self._build_ui()
        self._build_actions()
        self._connect_engine()
        self._set_classes(self._class_names)

        self._thread = EngineThread(self.engine)
        self._thread.start()

        self._status_timer = QTimer(self)
        self._status_timer.setInterval(250)
        self._status_timer.timeout.connect(self._on_status_timer_timeout)
        self._status_timer.start()

    # --------------------------------------------------------------------------------- building
    def _build_ui(self) -> None:
        central = QWidget()
        outer = QVBoxLayout(central)
        outer.setContentsMargins(6, 6, 6, 6)
        outer.setSpacing(6)

        # banners (one per kind of problem), above everything
        self._banner_box = QVBoxLayout()
        self._banner_box.setSpacing(4)
        outer.addLayout(self._banner_box)

        # controls row: each area builds its own controls
        controls = QHBoxLayout()
        self._build_source_controls(controls)
        controls.addSpacing(8)
        self._build_overlay_controls(controls)
        controls.addSpacing(8)
        self._build_record_controls(controls)
        outer.addLayout(controls)

        # view | side panel, over the timeline
        self.view = VideoView()
        self.view.frame_clicked.connect(self._on_view_frame_clicked)
        self.view.view_resized.connect(self._on_view_view_resized)
        self.probs = ProbabilityPanel()
        self.probs.face_clicked.connect(self._select_face)
        self.heads = HeadsView()
        side = QWidget()
        side_layout = QVBoxLayout(side)
        side_layout.setContentsMargins(0, 0, 0, 0)
        side_layout.addWidget(self.heads)
        side_layout.addWidget(self.probs)
        side_layout.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidget(side)
        scroll.setWidgetResizable(True)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setMinimumWidth(3 * HeadsView.TILE + 40)  # three attention tiles side by side, and a scroll bar
        scroll.setMaximumWidth(420)
        scroll.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        top = QSplitter(Qt.Orientation.Horizontal)
        top.addWidget(self.view)
        top.addWidget(scroll)
        top.setStretchFactor(0, 1)
        top.setStretchFactor(1, 0)
        self.timeline = TimelinePlot(seconds=self.settings.timeline_seconds)
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(top)
        split.addWidget(self.timeline)
        split.setStretchFactor(0, 1)
        split.setStretchFactor(1, 0)
        split.setSizes([560, 190])
        outer.addWidget(split, 1)
        self.setCentralWidget(central)

        # status bar
        sb = self.statusBar()
        self.rec_label = QLabel("")
        self.rec_label.setStyleSheet("color:#ff6b6b; font-weight:bold;")
        self.fps_label = QLabel("")
        self.backend_label = QLabel("backend: –")
        self.model_label = QLabel("model: –")
        for w in (self.rec_label, self.fps_label, self.backend_label, self.model_label):
            w.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Preferred)
            sb.addPermanentWidget(w)
        for w in (self.fps_label, self.backend_label, self.model_label):
            w.setContentsMargins(8, 0, 8, 0)
        # colours through a palette, not a window-wide style sheet: style sheets make every widget paint slower
        self.setPalette(dark_palette())
        self.setAutoFillBackground(True)
        self.resize(1280, 820)

    def _build_actions(self) -> None:
        menu = self.menuBar()
        file_menu = menu.addMenu("&File")
        self.open_action = self._action("&Open video or image…", QKeySequence.StandardKey.Open, self._on_open_action_triggered)
        file_menu.addAction(self.open_action)
        self.camera_menu = file_menu.addMenu("&Camera")
        self.camera_menu.aboutToShow.connect(self._on_camera_menu_about_to_show)
        file_menu.addSeparator()
        self.record_action = self._action("&Record timeline", "R", self._on_record_action_triggered)
        self.snapshot_action = self._action("&Snapshot (PNG)", "S", self._on_snapshot_action_triggered)
        self.open_folder_action = self._action("Open record &folder", None, self._on_open_folder_action_triggered)
        file_menu.addActions([self.record_action, self.snapshot_action, self.open_folder_action])
        self.review_action = self._action("Open r&ecording…", None, self._on_review_action_triggered)
        file_menu.addAction(self.review_action)
        file_menu.addSeparator()
        self.settings_action = self._action("Se&ttings…", QKeySequence.StandardKey.Preferences, self._on_settings_action_triggered)
        file_menu.addAction(self.settings_action)
        file_menu.addSeparator()
        file_menu.addAction(self._action("&Quit", QKeySequence.StandardKey.Quit, self.close))

        view_menu = menu.addMenu("&View")
        self.pause_action = self._action("&Pause / play", "Space", self._on_pause_action_triggered)
        self.heatmap_action = self._action("Next &heatmap mode", "H", self._on_heatmap_action_triggered)
        self.landmarks_action = self._action("&Landmarks", "L", lambda: self.landmarks_check.toggle())
        self.fullscreen_action = self._action("&Full screen", "F", self._on_fullscreen_action_triggered)
        self.fullscreen_action.setCheckable(True)
        self.face_bars_action = self._action("Probability &bars beside faces", "B", self._on_face_bars_action_triggered)
        self.face_bars_action.setCheckable(True)
        self.face_bars_action.setChecked(self.settings.face_bars)
        view_menu.addActions([self.pause_action, self.heatmap_action, self.landmarks_action, self.face_bars_action,
                              self.fullscreen_action])
        exit_fs = self._action("Leave full screen", "Esc", lambda: self.isFullScreen() and self._on_fullscreen_action_triggered())
        self.addAction(exit_fs)
        for a in (self.pause_action, self.heatmap_action, self.landmarks_action, self.face_bars_action, self.fullscreen_action,
                  self.record_action, self.snapshot_action):
            self.addAction(a)  # shortcuts work with the menu bar hidden (full screen)
        self._build_marker_actions()

        self._refresh_sources()

    def _action(self, text: str, shortcut: Any, slot: Callable[[], Any]) -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
        action.triggered.connect(slot)
        return action

    def _connect_engine(self) -> None:
        e = self.engine
        e.frame_ready.connect(self._on_engine_frame_ready)
        e.failed.connect(self._on_engine_failed)
        e.info.connect(self._on_engine_info)
        e.source_opened.connect(self._on_engine_source_opened)
        e.source_ended.connect(self._on_engine_source_ended)
        e.pipeline_ready.connect(self._on_engine_pipeline_ready)
        e.recording_changed.connect(self._on_engine_recording_changed)
        e.snapshot_saved.connect(self._on_engine_snapshot_saved)

    def _disconnect_engine(self) -> None:
        e = self.engine
        for sig, slot in (
            (e.frame_ready, self._on_engine_frame_ready), (e.failed, self._on_engine_failed), (e.info, self._on_engine_info),
            (e.source_opened, self._on_engine_source_opened), (e.source_ended, self._on_engine_source_ended),
            (e.pipeline_ready, self._on_engine_pipeline_ready), (e.recording_changed, self._on_engine_recording_changed),
            (e.snapshot_saved, self._on_engine_snapshot_saved), (e.marker_added, self._on_engine_marker_added),
        ):
            try:
                sig.disconnect(slot)
            except (RuntimeError, TypeError):
                pass

    @property
    def last_packet(self) -> Packet | None:
        return self._last_packet

    # ----------------------------------------------------------------------------- engine slots
    @Slot(object)
    def _on_engine_frame_ready(self, packet: Packet) -> None:
        """The one way a frame reaches the screen: paint it, then let each area show its part."""
        newest = self.engine.out.take()
        if newest is None:  # an earlier call already painted a newer packet: drop this stale signal
            return
        packet = newest
        self._last_packet = packet
        self.view.set_frame(packet.display, (packet.image.shape[1], packet.image.shape[0]))
        self._displayed.tick()
        self._latency_ms = 0.8 * self._latency_ms + 0.2 * packet.latency_ms if self._latency_ms else packet.latency_ms
        self._show_faces(packet)
        if packet.recording_rows is not None and self._recording is not None and self._recording.active:
            self._update_record_label(packet.recording_rows)
        self._show_position(packet)
        self.displayed.emit(packet)

    @Slot(str)
    def _on_engine_info(self, text: str) -> None:
        self.statusBar().showMessage(text, 4000)

    @Slot()
    def _on_status_timer_timeout(self) -> None:
        p = self._last_packet
        if p is None:
            return
        self.fps_label.setText(
            f"capture {p.capture_fps:4.1f} fps · processed {p.processed_fps:4.1f} fps · "
            f"shown {self._displayed.rate():4.1f} fps · latency {self._latency_ms:3.0f} ms"
        )
        if self.is_recording and p.recording_rows is not None:
            self._update_record_label(p.recording_rows)

    @Slot()
    def _on_fullscreen_action_triggered(self) -> None:
        if self.isFullScreen():
            self.showNormal()
            self.menuBar().show()
        else:
            self.showFullScreen()
            self.menuBar().hide()
        self.fullscreen_action.setChecked(self.isFullScreen())

    def closeEvent(self, event) -> None:  # noqa: N802
        self.shutdown()
        super().closeEvent(event)

    def shutdown(self, timeout_ms: int = 5000) -> None:
        """Stop the engine (it closes a running recording) and wait for its thread."""
        if self._closing:
            return
        self._closing = True
        self._status_timer.stop()
        self.engine.stop()
        if not self._thread.wait(timeout_ms):
            log.error("the engine thread did not stop within %d ms", timeout_ms)
        # deliver what the engine emitted while stopping (e.g. "recording saved") before disconnecting
        from PySide6.QtCore import QCoreApplication

        QCoreApplication.sendPostedEvents()
        self._disconnect_engine()

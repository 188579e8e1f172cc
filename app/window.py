"""The main window: observes the Engine's signals and paints; every request goes back to the Engine."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QSettings, Qt, QThread, QTimer, QUrl, Signal, Slot
from PySide6.QtGui import QAction, QActionGroup, QDesktopServices, QKeySequence
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QSlider,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

import app._compat  # noqa: F401  (first: PySide6 6.12 on Python 3.11, see app/_compat.py)
from app.engine import AppError, Engine, Packet, PipelineInfo, RecordingInfo, SourceInfo, is_still_path
from app.state import (
    AppSettings,
    RateMeter,
    TimelineBuffer,
    face_at,
    format_elapsed,
    heatmap_label,
    heatmap_modes,
    next_heatmap_mode,
    pick_default_face,
    recording_paths,
    snapshot_path,
    valid_heatmap_mode,
)
from app.widgets import Banner, HeadsView, ProbabilityPanel, SettingsDialog, TimelinePlot, VideoView, dark_palette
from dan_core.classes import FERPLUS

log = logging.getLogger(__name__)

MEDIA_FILTER = "Videos and images (*.mp4 *.avi *.mov *.mkv *.webm *.m4v *.png *.jpg *.jpeg *.bmp *.webp *.tif *.tiff);;All files (*)"
DEFAULT_CLASSES = FERPLUS  # shown until the model says what its classes are


# ------------------------------------------------------------------------------------ settings store


def load_settings(store: QSettings) -> AppSettings:
    return AppSettings.from_mapping(lambda key: store.value(key))


def save_settings(store: QSettings, settings: AppSettings, keys: tuple[str, ...] | None = None) -> None:
    values = settings.to_mapping()
    for key in keys or tuple(values):
        store.setValue(key, values[key])
    store.sync()


def pipeline_config(settings: AppSettings, *, mode: str = "video") -> Any:
    from dan_core.pipeline import PipelineConfig

    return PipelineConfig(
        model=settings.model or None,
        landmarker=settings.landmarker or None,
        backend=settings.backend,
        max_faces=settings.max_faces,
        smoothing=settings.smoothing,
        mode=mode,
        threads=1,  # one ONNX Runtime thread: MediaPipe detects the next frame on the other core (see Engine.run)
    )


class EngineThread(QThread):
    """Runs ``Engine.run`` (the engine has its own command queue; no Qt event loop is needed there)."""

    def __init__(self, engine: Engine) -> None:
        super().__init__()
        self.engine = engine
        self.setObjectName("dan-fer-engine")

    def run(self) -> None:
        self.engine.run()


# ------------------------------------------------------------------------------------------ window


class MainWindow(QMainWindow):
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

        # controls row
        controls = QHBoxLayout()
        self.source_combo = QComboBox()
        self.source_combo.setMinimumWidth(200)
        self.source_combo.setToolTip("Camera or file")
        self.source_combo.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.source_combo.activated.connect(self._on_source_combo_activated)
        self.open_button = QPushButton("Open…")
        self.play_button = QPushButton("Pause")
        self.play_button.setVisible(False)
        self.seek_slider = QSlider(Qt.Orientation.Horizontal)
        self.seek_slider.setEnabled(False)
        self.seek_slider.setVisible(False)  # shown for seekable files once one is open
        self.seek_slider.setMinimumWidth(120)
        self.seek_slider.sliderPressed.connect(self._on_seek_slider_pressed)
        self.seek_slider.sliderReleased.connect(self._on_seek_slider_released)
        self.time_label = QLabel(" ")
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
        self.record_button = QPushButton("● Record")
        self.snapshot_button = QPushButton("Snapshot")
        for w in (self.open_button, self.play_button, self.seek_slider, self.heatmap_combo, self.opacity_slider,
                  self.landmarks_check, self.record_button, self.snapshot_button):
            w.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # keys belong to the window's shortcuts
        controls.addWidget(self.source_combo)
        controls.addWidget(self.open_button)
        controls.addSpacing(8)
        controls.addWidget(self.play_button)
        controls.addWidget(self.seek_slider, 1)
        self._no_seek_spacer = QWidget()  # takes the slider's room when there is nothing to seek
        self._no_seek_spacer.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        controls.addWidget(self._no_seek_spacer, 1)
        controls.addWidget(self.time_label)
        controls.addSpacing(8)
        controls.addWidget(QLabel("Attention"))
        controls.addWidget(self.heatmap_combo)
        controls.addWidget(self.opacity_slider)
        controls.addWidget(self.landmarks_check)
        controls.addSpacing(8)
        controls.addWidget(self.record_button)
        controls.addWidget(self.snapshot_button)
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

        self.open_button.clicked.connect(self._on_open_action_triggered)
        self.play_button.clicked.connect(self._on_pause_action_triggered)
        self.record_button.clicked.connect(self._on_record_action_triggered)
        self.snapshot_button.clicked.connect(self._on_snapshot_action_triggered)
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
            (e.snapshot_saved, self._on_engine_snapshot_saved),
        ):
            try:
                sig.disconnect(slot)
            except (RuntimeError, TypeError):
                pass

    # ---------------------------------------------------------------------------------- public
    def start(self, source: str | None = None) -> None:
        """Load the model and open ``source`` (default: the first camera, or a message when there is none)."""
        self.engine.set_options(heatmap=self.settings.heatmap, opacity=self.settings.opacity, landmarks=self.settings.landmarks,
                                face_bars=self.settings.face_bars, view_size=self.view.device_size())
        self._configure_engine(mode="image" if source is not None and (is_still_path(source) or Path(source).is_dir()) else "video")
        if source is None:
            cams = self.cameras()
            if not cams:
                self._show_problem(AppError("camera", "No camera found."))
                return
            source = str(cams[0][0])
        self.open_source(source)

    def _configure_engine(self, *, mode: str | None = None) -> None:
        """(Re)build the pipeline; ``mode`` defaults to what the open source needs (the engine adapts it on open)."""
        if mode is None:
            mode = self._source.mode if self._source is not None else "video"
        self.statusBar().showMessage("Loading the model and the face landmarker…")  # stays until ready or failed
        self.engine.configure(pipeline_config(self.settings, mode=mode))

    def open_source(self, spec: str) -> None:
        self._source_spec = str(spec)
        self._ended = False
        self.set_paused(False, tell_engine=False)
        self._timeline.clear()
        self._selected = None
        self.engine.set_options(selected_id=None)
        self.engine.open_source(str(spec))

    def cameras(self) -> list[tuple[int, str]]:
        if self._cameras is None:
            from dan_core.pipeline.sources import list_cameras

            self._cameras = list_cameras()
        return self._cameras

    def start_recording(self, csv_path: Path | None = None, *, force: bool = False) -> None:
        if csv_path is None:
            csv_path, video = recording_paths(self.settings.record_dir)
            video_path = video if self.settings.record_video else None
        else:
            video_path = Path(csv_path).with_suffix(".mp4") if self.settings.record_video else None
        self.engine.start_recording(Path(csv_path), video_path=video_path, force=force)

    def stop_recording(self) -> None:
        self.engine.stop_recording()

    @property
    def recording(self) -> RecordingInfo | None:
        """The last recording state the engine reported (active, or finished with its message)."""
        return self._recording

    @property
    def is_recording(self) -> bool:
        return bool(self._recording and self._recording.active)

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

    def banner_texts(self) -> dict[str, str]:
        return {kind: b.text for kind, b in self._banners.items() if not b.isHidden()}

    def banner(self, kind: str) -> Banner | None:
        b = self._banners.get(kind)
        return b if b is not None and not b.isHidden() else None

    @property
    def last_packet(self) -> Packet | None:
        return self._last_packet

    @property
    def selected_face(self) -> int | None:
        return self._selected

    # ----------------------------------------------------------------------------- engine slots
    @Slot(object)
    def _on_engine_frame_ready(self, packet: Packet) -> None:
        newest = self.engine.out.take()
        if newest is None:  # an earlier call already painted a newer packet: drop this stale signal
            return
        packet = newest
        self._last_packet = packet
        self.view.set_frame(packet.display, (packet.image.shape[1], packet.image.shape[0]))
        self._displayed.tick()
        self._latency_ms = 0.8 * self._latency_ms + 0.2 * packet.latency_ms if self._latency_ms else packet.latency_ms
        result = packet.result
        if result is not None:
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
        if packet.recording_rows is not None and self._recording is not None and self._recording.active:
            self._update_record_label(packet.recording_rows)
        if self._source is not None and self._source.duration_s and not self._seek_dragging:
            self.seek_slider.blockSignals(True)
            self.seek_slider.setValue(int(packet.media_time_s * 10))
            self.seek_slider.blockSignals(False)
            self.time_label.setText(f"{format_elapsed(packet.media_time_s)} / {format_elapsed(self._source.duration_s)}")
        self.displayed.emit(packet)

    @Slot(object)
    def _on_engine_failed(self, error: AppError) -> None:
        if error.kind in ("model", "landmarker", "backend"):
            self.statusBar().clearMessage()
        self._show_problem(error)

    @Slot(str)
    def _on_engine_info(self, text: str) -> None:
        self.statusBar().showMessage(text, 4000)

    @Slot(object)
    def _on_engine_source_opened(self, info: SourceInfo) -> None:
        self._source = info
        for kind in ("camera", "camera_lost", "source", "source_failed", "ended"):
            self._clear_problem(kind)
        self._refresh_sources()
        seekable = info.duration_s is not None
        self.seek_slider.setEnabled(seekable)
        self.seek_slider.setVisible(seekable)
        self._no_seek_spacer.setVisible(not seekable)
        self.seek_slider.setRange(0, int((info.duration_s or 0) * 10))
        self.time_label.setText("live" if info.is_live else ("still image" if info.is_still else "--:--"))
        self.play_button.setEnabled(not info.is_still)
        self.play_button.setVisible(not info.is_still)
        self.setWindowTitle(f"dan-fer · {info.name}")

    @Slot(object)
    def _on_engine_source_ended(self, info: SourceInfo) -> None:
        self._ended = True
        self.set_paused(True, tell_engine=False)
        self._show_banner("ended", "info", f"End of {info.name}. Press Space to play it again, or open another file.",
                          [("Play again", self._on_pause_action_triggered), ("Open…", self._on_open_action_triggered)])

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

    @Slot(object)
    def _on_engine_recording_changed(self, info: RecordingInfo) -> None:
        self._recording = info
        if info.active:
            self._record_started = time.monotonic()
            self.record_button.setText("■ Stop")
            self.record_action.setText("Stop &recording")
            self._update_record_label(0)
            self._clear_problem("recorded")
            self.statusBar().showMessage(f"Recording to {info.csv_path}", 4000)
        else:
            self.record_button.setText("● Record")
            self.record_action.setText("&Record timeline")
            self.rec_label.setText("")
            if info.message:
                self._show_banner("recorded", "info", info.message, [("Open folder", self._on_open_folder_action_triggered)])

    @Slot(object)
    def _on_engine_snapshot_saved(self, path: Path) -> None:
        self.statusBar().showMessage(f"Snapshot saved: {path}", 5000)

    # ------------------------------------------------------------------------------ ui slots
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
    def _on_open_action_triggered(self) -> None:
        start = str(Path(self._source_spec).parent) if self._source_spec and not self._source_spec.isdigit() else str(Path.home())
        path, _ = QFileDialog.getOpenFileName(self, "Open a video or an image", start, MEDIA_FILTER)
        if path:
            self.open_source(path)

    @Slot(int)
    def _on_source_combo_activated(self, index: int) -> None:
        spec = self.source_combo.itemData(index)
        if spec == "__open__":
            self._on_open_action_triggered()
            self._refresh_sources()
        elif spec is not None and spec != self._source_spec:
            self.open_source(str(spec))

    @Slot()
    def _on_camera_menu_about_to_show(self) -> None:
        self._cameras = None  # re-read: a camera may have been plugged in
        self.camera_menu.clear()
        cams = self.cameras()
        if not cams:
            a = self.camera_menu.addAction("No camera found")
            a.setEnabled(False)
        group = QActionGroup(self.camera_menu)
        for index, name in cams:
            a = self.camera_menu.addAction(f"{index}: {name}")
            a.setCheckable(True)
            a.setChecked(self._source_spec == str(index))
            a.triggered.connect(lambda _=False, i=index: self.open_source(str(i)))
            group.addAction(a)
        self._refresh_sources()

    @Slot()
    def _on_pause_action_triggered(self) -> None:
        if self._source is None or self._source.is_still:
            return
        if self._ended:
            self._ended = False
            self._clear_problem("ended")
            self.engine.seek(0.0)
            self.set_paused(False)
            return
        self.set_paused(not self._paused)

    def set_paused(self, paused: bool, *, tell_engine: bool = True) -> None:
        self._paused = paused
        self.play_button.setText("Play" if paused else "Pause")
        if tell_engine:
            self.engine.set_paused(paused)

    @Slot()
    def _on_seek_slider_pressed(self) -> None:
        self._seek_dragging = True

    @Slot()
    def _on_seek_slider_released(self) -> None:
        self._seek_dragging = False
        self._ended = False
        self._clear_problem("ended")
        self.engine.seek(self.seek_slider.value() / 10.0)

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

    @Slot()
    def _on_record_action_triggered(self) -> None:
        if self.is_recording:
            self.stop_recording()
        else:
            self.start_recording()

    @Slot()
    def _on_snapshot_action_triggered(self) -> None:
        self.engine.snapshot(snapshot_path(self.settings.record_dir))

    @Slot()
    def _on_open_folder_action_triggered(self) -> None:
        folder = Path(self.settings.record_dir).expanduser()
        if self._recording and self._recording.csv_path:
            folder = self._recording.csv_path.parent
        folder.mkdir(parents=True, exist_ok=True)
        QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder)))

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

    @Slot()
    def _on_fullscreen_action_triggered(self) -> None:
        if self.isFullScreen():
            self.showNormal()
            self.menuBar().show()
        else:
            self.showFullScreen()
            self.menuBar().hide()
        self.fullscreen_action.setChecked(self.isFullScreen())

    # ---------------------------------------------------------------------------------- helpers
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

    def _refresh_sources(self) -> None:
        combo = self.source_combo
        combo.blockSignals(True)
        combo.clear()
        for index, name in self.cameras():
            combo.addItem(f"Camera {index}: {name}", str(index))
        if self._source_spec and not self._source_spec.isdigit():
            combo.addItem(Path(self._source_spec).name, self._source_spec)
        combo.addItem("Open file…", "__open__")
        idx = combo.findData(self._source_spec) if self._source_spec else -1
        combo.setCurrentIndex(idx if idx >= 0 else combo.count() - 1)
        combo.blockSignals(False)

    def _update_record_label(self, rows: int) -> None:
        elapsed = format_elapsed(time.monotonic() - self._record_started)
        self.rec_label.setText(f"● REC {elapsed} · {rows} rows")

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

    def _apply_changed(self, **changes: Any) -> None:
        """Apply the current settings with a few fields changed (the banners' one-click fixes)."""
        self.apply_settings(AppSettings(**{**self.settings.to_mapping(), **changes}))

    @Slot()
    def _on_choose_model(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Choose a DAN model", self.settings.model or str(Path.home()),
                                              "ONNX models (*.onnx);;All files (*)")
        if path:
            self._apply_changed(model=path)

    @Slot()
    def _on_use_auto_backend(self) -> None:
        self._apply_changed(backend="auto")

    @Slot()
    def _on_choose_landmarker(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Choose face_landmarker.task", self.settings.landmarker or str(Path.home()),
                                              "MediaPipe task (*.task);;All files (*)")
        if path:
            self._apply_changed(landmarker=path)

    # ------------------------------------------------------------------------------ qt events
    def dragEnterEvent(self, event) -> None:  # noqa: N802
        urls = event.mimeData().urls() if event.mimeData().hasUrls() else []
        if urls and urls[0].isLocalFile():
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:  # noqa: N802
        urls = event.mimeData().urls()
        if urls and urls[0].isLocalFile():
            self.open_source(urls[0].toLocalFile())
            event.acceptProposedAction()

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


def _class_colors(class_names: tuple[str, ...]) -> dict[str, tuple[int, int, int]]:
    """The pipeline's colours, so a class looks the same in the picture, the bars and the timeline."""
    from dan_core.pipeline.draw import class_colors

    return {n: tuple(int(v) for v in c) for n, c in class_colors(class_names).items()}

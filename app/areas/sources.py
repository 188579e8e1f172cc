"""Sources and playback: the source menu and combo, Open, pause/play, the seek slider, drag and drop.

A part of ``MainWindow`` (see app/window.py); it reads and writes the window's widgets and state.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Slot
from PySide6.QtGui import QActionGroup
from PySide6.QtWidgets import QComboBox, QFileDialog, QHBoxLayout, QLabel, QPushButton, QSizePolicy, QSlider, QWidget

from app.messages import AppError, Packet, SourceInfo
from app.state import format_elapsed
from dan_core.paths import IMAGE_SUFFIXES
from dan_core.pipeline.sources import list_cameras, source_mode

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v")
MEDIA_FILTER = "Videos and images ({});;All files (*)".format(
    " ".join(f"*{s}" for s in (*VIDEO_SUFFIXES, *sorted(IMAGE_SUFFIXES))))


class SourcesArea:
    """Opening cameras, videos and images; pausing and seeking files."""

    def _build_source_controls(self, controls: QHBoxLayout) -> None:
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
        for w in (self.open_button, self.play_button, self.seek_slider):
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
        self.open_button.clicked.connect(self._on_open_action_triggered)
        self.play_button.clicked.connect(self._on_pause_action_triggered)

    def start(self, source: str | None = None) -> None:
        """Load the model and open ``source`` (default: the first camera, or a message when there is none)."""
        self.engine.set_options(heatmap=self.settings.heatmap, opacity=self.settings.opacity, landmarks=self.settings.landmarks,
                                face_bars=self.settings.face_bars, view_size=self.view.device_size())
        self._configure_engine(mode=source_mode(source) if source is not None else "video")
        if source is None:
            cams = self.cameras()
            if not cams:
                self._show_problem(AppError("camera", "No camera found."))
                return
            source = str(cams[0][0])
        self.open_source(source)

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
            self._cameras = list_cameras()
        return self._cameras

    def _show_position(self, packet: Packet) -> None:
        """The seek slider and the time label follow the frame on screen."""
        if self._source is not None and self._source.duration_s and not self._seek_dragging:
            self.seek_slider.blockSignals(True)
            self.seek_slider.setValue(int(packet.media_time_s * 10))
            self.seek_slider.blockSignals(False)
            self.time_label.setText(f"{format_elapsed(packet.media_time_s)} / {format_elapsed(self._source.duration_s)}")

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

    def dragEnterEvent(self, event) -> None:  # noqa: N802
        urls = event.mimeData().urls() if event.mimeData().hasUrls() else []
        if urls and urls[0].isLocalFile():
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:  # noqa: N802
        urls = event.mimeData().urls()
        if urls and urls[0].isLocalFile():
            self.open_source(urls[0].toLocalFile())
            event.acceptProposedAction()

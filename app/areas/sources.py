"""Sources and playback: the source menu and combo, Open, pause/play, the seek slider, drag and drop."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, Qt, Signal, Slot
from PySide6.QtGui import QActionGroup, QKeySequence
from PySide6.QtWidgets import QComboBox, QFileDialog, QHBoxLayout, QLabel, QMenu, QPushButton, QSizePolicy, QSlider, QWidget

from app.engine import Engine
from app.messages import AppError, Packet, SourceInfo
from app.state import format_elapsed
from app.widgets import BannerStack
from app.wiring import Connections, make_action
from dan_core.paths import IMAGE_SUFFIXES
from dan_core.pipeline.sources import list_cameras

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v")
MEDIA_FILTER = "Videos and images ({});;All files (*)".format(
    " ".join(f"*{s}" for s in (*VIDEO_SUFFIXES, *sorted(IMAGE_SUFFIXES))))


class SourcesArea(QObject):
    """Opening cameras, videos and images; pausing and seeking files.

    ``window`` is where the file dialog opens and whose title names the source.
    """

    opening = Signal(str)  # a source is about to open: what was shown of the previous one is forgotten
    failed = Signal(object)  # AppError: no camera to start with

    def __init__(self, *, engine: Engine, banners: BannerStack, window: QWidget, cameras: list[tuple[int, str]] | None = None) -> None:
        super().__init__(window)
        self._engine, self._banners, self._window, self._cameras = engine, banners, window, cameras
        self._source: SourceInfo | None = None
        self._spec: str | None = None
        self._paused = False
        self._ended = False
        self._seek_dragging = False
        self._build_controls()
        self.open_action = make_action(self, "&Open video or image…", QKeySequence.StandardKey.Open, self.choose_file)
        self.pause_action = make_action(self, "&Pause / play", "Space", self.toggle_pause)
        self.camera_menu = QMenu("&Camera", window)
        self.camera_menu.aboutToShow.connect(self._on_camera_menu_about_to_show)
        self._links = Connections()
        self._links.connect(engine.source_opened, self._on_engine_source_opened)
        self._links.connect(engine.source_ended, self._on_engine_source_ended)
        self._links.connect(engine.replaying, self._on_engine_replaying)
        self._refresh_sources()

    def _build_controls(self) -> None:
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
        self._no_seek_spacer = QWidget()  # takes the slider's room when there is nothing to seek
        self._no_seek_spacer.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        self.open_button.clicked.connect(self.choose_file)
        self.play_button.clicked.connect(self.toggle_pause)

    def add_controls(self, row: QHBoxLayout) -> None:
        row.addWidget(self.source_combo)
        row.addWidget(self.open_button)
        row.addSpacing(8)
        row.addWidget(self.play_button)
        row.addWidget(self.seek_slider, 1)
        row.addWidget(self._no_seek_spacer, 1)
        row.addWidget(self.time_label)

    # ------------------------------------------------------------------------------------ state
    @property
    def source(self) -> SourceInfo | None:
        """The open source as the engine reported it."""
        return self._source

    def cameras(self) -> list[tuple[int, str]]:
        if self._cameras is None:
            self._cameras = list_cameras()
        return self._cameras

    # ---------------------------------------------------------------------------------- actions
    def start(self, source: str | None = None) -> None:
        """Open ``source`` (default: the first camera; without one, ``failed`` says so)."""
        if source is None:
            cams = self.cameras()
            if not cams:
                self.failed.emit(AppError("camera", "No camera found."))
                return
            source = str(cams[0][0])
        self.open_source(source)

    def open_source(self, spec: str) -> None:
        self._spec = str(spec)
        self._ended = False
        self.set_paused(False, tell_engine=False)
        self.opening.emit(self._spec)
        self._engine.open_source(str(spec))

    @Slot()
    def choose_file(self) -> None:
        start = str(Path(self._spec).parent) if self._spec and not self._spec.isdigit() else str(Path.home())
        path, _ = QFileDialog.getOpenFileName(self._window, "Open a video or an image", start, MEDIA_FILTER)
        if path:
            self.open_source(path)

    def retry_camera(self) -> None:
        """Open the camera again (the one open before, else camera 0)."""
        self.open_source(self._spec if self._spec and self._spec.isdigit() else "0")

    @Slot()
    def toggle_pause(self) -> None:
        if self._source is None or self._source.is_still:
            return
        if self._ended:
            self._ended = False
            self._banners.clear("ended")
            self._engine.seek(0.0)
            self.set_paused(False)
            return
        self.set_paused(not self._paused)

    @property
    def paused(self) -> bool:
        return self._paused

    def set_paused(self, paused: bool, *, tell_engine: bool = True) -> None:
        self._paused = paused
        self.play_button.setText("Play" if paused else "Pause")
        if tell_engine:
            self._engine.set_paused(paused)

    def drag_enter(self, event) -> None:
        urls = event.mimeData().urls() if event.mimeData().hasUrls() else []
        if urls and urls[0].isLocalFile():
            event.acceptProposedAction()

    def drop(self, event) -> None:
        urls = event.mimeData().urls()
        if urls and urls[0].isLocalFile():
            self.open_source(urls[0].toLocalFile())
            event.acceptProposedAction()

    def show(self, packet: Packet) -> None:
        """The seek slider and the time label follow the frame on screen."""
        if self._source is not None and self._source.duration_s and not self._seek_dragging:
            self.seek_slider.blockSignals(True)
            self.seek_slider.setValue(int(packet.media_time_s * 10))
            self.seek_slider.blockSignals(False)
            self.time_label.setText(f"{format_elapsed(packet.media_time_s)} / {format_elapsed(self._source.duration_s)}")

    def detach(self) -> None:
        self._links.disconnect_all()

    # ------------------------------------------------------------------------------------ slots
    @Slot(object)
    def _on_engine_source_opened(self, info: SourceInfo) -> None:
        self._source = info
        self._banners.clear("ended")
        self._refresh_sources()
        seekable = info.duration_s is not None
        self.seek_slider.setEnabled(seekable)
        self.seek_slider.setVisible(seekable)
        self._no_seek_spacer.setVisible(not seekable)
        self.seek_slider.setRange(0, int((info.duration_s or 0) * 10))
        self.time_label.setText("live" if info.is_live else ("still image" if info.is_still else "--:--"))
        self.play_button.setEnabled(not info.is_still)
        self.play_button.setVisible(not info.is_still)
        self._window.setWindowTitle(f"dan-fer · {info.name}")

    @Slot(object)
    def _on_engine_source_ended(self, info: SourceInfo) -> None:
        self._ended = True
        self.set_paused(True, tell_engine=False)
        self._banners.show_message("ended", "info", f"End of {info.name}. Press Space to play it again, or open another file.",
                                   [("Play again", self.toggle_pause), ("Open…", self.choose_file)])

    @Slot(object)
    def _on_engine_replaying(self, info: SourceInfo) -> None:
        """The engine plays the ended video again (a recording was started after its end)."""
        self._ended = False
        self._banners.clear("ended")
        self.set_paused(False, tell_engine=False)

    @Slot(int)
    def _on_source_combo_activated(self, index: int) -> None:
        spec = self.source_combo.itemData(index)
        if spec == "__open__":
            self.choose_file()
            self._refresh_sources()
        elif spec is not None and spec != self._spec:
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
            a.setChecked(self._spec == str(index))
            a.triggered.connect(lambda _=False, i=index: self.open_source(str(i)))
            group.addAction(a)
        self._refresh_sources()

    @Slot()
    def _on_seek_slider_pressed(self) -> None:
        self._seek_dragging = True

    @Slot()
    def _on_seek_slider_released(self) -> None:
        self._seek_dragging = False
        self._ended = False
        self._banners.clear("ended")
        self._engine.seek(self.seek_slider.value() / 10.0)

    def _refresh_sources(self) -> None:
        combo = self.source_combo
        combo.blockSignals(True)
        combo.clear()
        for index, name in self.cameras():
            combo.addItem(f"Camera {index}: {name}", str(index))
        if self._spec and not self._spec.isdigit():
            combo.addItem(Path(self._spec).name, self._spec)
        combo.addItem("Open file…", "__open__")
        idx = combo.findData(self._spec) if self._spec else -1
        combo.setCurrentIndex(idx if idx >= 0 else combo.count() - 1)
        combo.blockSignals(False)

"""The main window: builds the areas (app/areas/), places their widgets, and wires them together.

The window only paints what the engine sends (``Packet``s, ``app.messages``) and hands each packet
to the areas that show a part of it. Each area is an object the window holds, given what it needs
as keyword-only arguments; an area never reads another's attributes: where one must react to
another, the window connects a signal of one to a method of the other here.
"""

from __future__ import annotations

import logging

from PySide6.QtCore import QCoreApplication, QSettings, Qt, QThread, Signal, Slot
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import QHBoxLayout, QMainWindow, QSplitter, QVBoxLayout, QWidget

import app._compat  # noqa: F401  (first: PySide6 6.12 on Python 3.11, see app/_compat.py)
from app.areas.markers import MarkersArea
from app.areas.overlays import OverlaysArea
from app.areas.problems import ProblemActions, ProblemsArea
from app.areas.recording import RecordingArea
from app.areas.review import ReviewArea
from app.areas.settings import SettingsArea
from app.areas.sources import SourcesArea
from app.areas.status import StatusArea
from app.engine import Engine
from app.messages import Packet
from app.state import AppSettings, Preferences
from app.widgets import BannerStack, TimelinePlot, VideoView, dark_palette
from app.wiring import make_action

log = logging.getLogger(__name__)

__all__ = ["MainWindow"]


class EngineThread(QThread):
    """Runs ``Engine.run`` (the engine has its own command queue; no Qt event loop is needed there)."""

    def __init__(self, engine: Engine) -> None:
        super().__init__()
        self.engine = engine
        self.setObjectName("dan-fer-engine")

    def run(self) -> None:
        self.engine.run()


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
        self.engine = engine or Engine()
        self.prefs = Preferences(store, settings)
        self._last_packet: Packet | None = None
        self._closing = False
        self._build_areas(cameras)
        self._build_ui()
        self._build_menus()
        self._wire()
        self._thread = EngineThread(self.engine)
        self._thread.start()

    # --------------------------------------------------------------------------------- building
    def _build_areas(self, cameras: list[tuple[int, str]] | None) -> None:
        engine, prefs, bar = self.engine, self.prefs, self.statusBar()
        self.view = VideoView()
        self.timeline = TimelinePlot(seconds=prefs.current.timeline_seconds)
        self.banners = BannerStack()
        self.sources = SourcesArea(engine=engine, banners=self.banners, window=self, cameras=cameras)
        self.overlays = OverlaysArea(engine=engine, prefs=prefs, view=self.view, timeline=self.timeline, status_bar=bar, parent=self)
        self.recording = RecordingArea(engine=engine, prefs=prefs, banners=self.banners, status_bar=bar, parent=self)
        self.markers = MarkersArea(engine=engine, prefs=prefs, timeline=self.timeline, status_bar=bar, window=self)
        self.review = ReviewArea(prefs=prefs, window=self)
        self.settings = SettingsArea(engine=engine, prefs=prefs, status_bar=bar, window=self)
        self.status = StatusArea(engine=engine, status_bar=bar, parent=self)
        steps = ProblemActions(open_file=self.sources.choose_file, retry_camera=self.sources.retry_camera, settings=self.settings.edit,
                               choose_model=self.settings.choose_model, choose_landmarker=self.settings.choose_landmarker,
                               use_auto_backend=self.settings.use_auto_backend)
        self.problems = ProblemsArea(engine=engine, banners=self.banners, view=self.view, status_bar=bar, actions=steps, parent=self)
        self._areas = (self.sources, self.overlays, self.recording, self.markers, self.settings, self.status, self.problems)
        self._shows = (self.status, self.overlays, self.recording, self.sources, self.markers)  # each shows its part of a frame

    def _build_ui(self) -> None:
        central = QWidget()
        outer = QVBoxLayout(central)
        outer.setContentsMargins(6, 6, 6, 6)
        outer.setSpacing(6)
        outer.addLayout(self.banners)  # one banner per kind of problem, above everything
        controls = QHBoxLayout()  # each area adds its own controls
        self.sources.add_controls(controls)
        controls.addSpacing(8)
        self.overlays.add_controls(controls)
        controls.addSpacing(8)
        self.recording.add_controls(controls)
        outer.addLayout(controls)
        top = QSplitter(Qt.Orientation.Horizontal)  # view | side panel, over the timeline
        top.addWidget(self.view)
        top.addWidget(self.overlays.panel)
        top.setStretchFactor(0, 1)
        top.setStretchFactor(1, 0)
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(top)
        split.addWidget(self.timeline)
        split.setStretchFactor(0, 1)
        split.setStretchFactor(1, 0)
        split.setSizes([560, 190])
        outer.addWidget(split, 1)
        self.setCentralWidget(central)
        for label in (self.recording.rec_label, *self.status.labels):
            self.statusBar().addPermanentWidget(label)
        # colours through a palette, not a window-wide style sheet: style sheets make every widget paint slower
        self.setPalette(dark_palette())
        self.setAutoFillBackground(True)
        self.resize(1280, 820)

    def _build_menus(self) -> None:
        src, ovl, rec = self.sources, self.overlays, self.recording
        file_menu = self.menuBar().addMenu("&File")
        file_menu.addAction(src.open_action)
        file_menu.addMenu(src.camera_menu)
        file_menu.addSeparator()
        file_menu.addActions([rec.record_action, rec.snapshot_action, rec.open_folder_action, self.review.open_action])
        file_menu.addSeparator()
        file_menu.addAction(self.settings.edit_action)
        file_menu.addSeparator()
        file_menu.addAction(make_action(self, "&Quit", QKeySequence.StandardKey.Quit, self.close))
        self.fullscreen_action = make_action(self, "&Full screen", "F", self._on_fullscreen_action_triggered)
        self.fullscreen_action.setCheckable(True)
        view_menu = self.menuBar().addMenu("&View")
        view_menu.addActions([src.pause_action, ovl.heatmap_action, ovl.landmarks_action, ovl.face_bars_action, self.fullscreen_action])
        self.addAction(make_action(self, "Leave full screen", "Esc", self._on_leave_fullscreen_action_triggered))
        # shortcuts work with the menu bar hidden (full screen)
        self.addActions([src.pause_action, ovl.heatmap_action, ovl.landmarks_action, ovl.face_bars_action, self.fullscreen_action,
                         rec.record_action, rec.snapshot_action, *self.markers.marker_actions, self.markers.marker_text_action])

    def _wire(self) -> None:
        """What one area does when another acts; the engine's signals each area connects itself."""
        self.engine.frame_ready.connect(self._on_engine_frame_ready)
        self.sources.opening.connect(self.overlays.forget_faces)
        self.sources.failed.connect(self.problems.show)
        self.review.failed.connect(self.problems.show)
        self.settings.applied.connect(self.overlays.follow_settings)
        self.overlays.timeline_drawn.connect(self.markers.draw)
        self.problems.shown.connect(self.problem_shown)

    # ---------------------------------------------------------------------------------- running
    def start(self, source: str | None = None) -> None:
        """Load the model and open ``source`` (default: the first camera, or a message when there is none)."""
        self.overlays.send_options()
        self.settings.configure_engine(opening=source)
        self.sources.start(source)

    @property
    def last_packet(self) -> Packet | None:
        return self._last_packet

    @Slot(object)
    def _on_engine_frame_ready(self, packet: Packet) -> None:
        """The one way a frame reaches the screen: paint it, then let each area show its part."""
        newest = self.engine.out.take()
        if newest is None:  # an earlier call already painted a newer packet: drop this stale signal
            return
        packet = newest
        self._last_packet = packet
        self.view.set_frame(packet.display, (packet.image.shape[1], packet.image.shape[0]))
        for area in self._shows:
            area.show(packet)
        self.displayed.emit(packet)

    @Slot()
    def _on_fullscreen_action_triggered(self) -> None:
        if self.isFullScreen():
            self.showNormal()
            self.menuBar().show()
        else:
            self.showFullScreen()
            self.menuBar().hide()
        self.fullscreen_action.setChecked(self.isFullScreen())

    @Slot()
    def _on_leave_fullscreen_action_triggered(self) -> None:
        if self.isFullScreen():
            self._on_fullscreen_action_triggered()

    def dragEnterEvent(self, event) -> None:  # noqa: N802
        self.sources.drag_enter(event)

    def dropEvent(self, event) -> None:  # noqa: N802
        self.sources.drop(event)

    def closeEvent(self, event) -> None:  # noqa: N802
        self.shutdown()
        super().closeEvent(event)

    def shutdown(self, timeout_ms: int = 5000) -> None:
        """Stop the engine (it closes a running recording) and wait for its thread."""
        if self._closing:
            return
        self._closing = True
        self.engine.stop()
        if not self._thread.wait(timeout_ms):
            log.error("the engine thread did not stop within %d ms", timeout_ms)
        # deliver what the engine emitted while stopping (e.g. "recording saved") before disconnecting
        QCoreApplication.sendPostedEvents()
        try:
            self.engine.frame_ready.disconnect(self._on_engine_frame_ready)
        except (RuntimeError, TypeError):
            pass
        for area in self._areas:
            area.detach()

"""Event markers: keys 1-9 (labels from Settings) and M (a typed label) while recording; lines on the timeline.

A marker is placed at the frame on screen when the key is pressed; the engine writes it to
``<csv>.events.csv`` at once and reports it back (``Engine.marker_added``, also for the LSL
markers it records), and the timeline draws it.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Slot
from PySide6.QtWidgets import QInputDialog, QStatusBar, QWidget

from app.engine import Engine
from app.messages import Packet, RecordingInfo
from app.state import Preferences, marker_label
from app.widgets import TimelinePlot
from app.wiring import Connections, make_action


class MarkersArea(QObject):
    """Marker keys, the M dialog, and the markers drawn on the live timeline.

    ``marker_actions`` and ``marker_text_action`` carry the keys; the window adds them to itself so
    they work with the menu bar hidden. The M dialog opens over ``window``.
    """

    def __init__(self, *, engine: Engine, prefs: Preferences, timeline: TimelinePlot, status_bar: QStatusBar, window: QWidget) -> None:
        super().__init__(window)
        self._engine, self._prefs, self._timeline, self._status_bar, self._window = engine, prefs, timeline, status_bar, window
        self._markers: list = []  # Events of this recording, as the engine wrote them
        self._recording = False
        self._shown: Packet | None = None  # the frame on screen
        self.marker_dialog: QInputDialog | None = None
        self.marker_actions = [make_action(self, f"Marker {digit}", str(digit), self._marker_key(digit)) for digit in range(1, 10)]
        self.marker_text_action = make_action(self, "Marker with a &label…", "M", self._on_marker_text_action_triggered)
        self._links = Connections()
        self._links.connect(engine.marker_added, self._on_engine_marker_added)
        self._links.connect(engine.recording_changed, self._on_engine_recording_changed)

    def _marker_key(self, digit: int):
        return lambda: self.add_marker(marker_label(self._prefs.current.marker_labels, digit))  # no arguments: not QAction's `checked`

    def add_marker(self, label: str) -> None:
        """A marker at the frame on screen (written only while recording; otherwise the status bar says so)."""
        packet = self._shown
        if not self._recording:
            self._status_bar.showMessage(f"Marker {label!r} not written: markers are written while recording (R)", 4000)
            return
        if packet is None:
            self._status_bar.showMessage("No frame yet: nothing to mark", 3000)
            return
        frame = packet.result.index if packet.result is not None else None
        self._engine.add_marker(label, packet.media_time_s, frame)

    def show(self, packet: Packet) -> None:
        self._shown = packet

    def draw(self, now: float) -> None:
        """Lines at each marker's time relative to ``now``, the media time where the timeline's x axis ends."""
        self._timeline.set_markers([(e.time_s - now, e.label) for e in self._markers[-50:]])

    def detach(self) -> None:
        self._links.disconnect_all()

    @Slot()
    def _on_marker_text_action_triggered(self) -> None:
        """A non-modal dialog: the video goes on while the label is typed; the marker keeps the moment M was pressed."""
        packet = self._shown
        if packet is None or not self._recording:
            self.add_marker("M")  # says why nothing is written
            return
        moment = (packet.media_time_s, packet.result.index if packet.result is not None else None)
        dialog = QInputDialog(self._window)
        dialog.setWindowTitle("Marker")
        dialog.setLabelText(f"Label for the marker at {moment[0]:.2f} s:")
        dialog.textValueSelected.connect(lambda text: text.strip() and self._engine.add_marker(text.strip(), *moment))
        dialog.finished.connect(dialog.deleteLater)
        self.marker_dialog = dialog
        dialog.open()

    @Slot(object)
    def _on_engine_marker_added(self, event) -> None:
        self._markers.append(event)
        self._status_bar.showMessage(f"Marker {event.label!r} at {event.time_s:.2f} s ({event.source})", 3000)
        if self._shown is not None:
            self.draw(self._shown.media_time_s)

    @Slot(object)
    def _on_engine_recording_changed(self, info: RecordingInfo) -> None:
        self._recording = info.active
        if info.active:  # the timeline shows this recording's markers
            self._markers = []
            self._timeline.set_markers([])

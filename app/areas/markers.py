"""Event markers: keys 1-9 (labels from Settings) and M (a typed label) while recording; lines on the timeline.

A part of ``MainWindow`` (see app/window.py). A marker is placed at the frame on screen when the
key is pressed; the engine writes it to ``<csv>.events.csv`` at once and reports it back
(``Engine.marker_added``, also for the LSL markers it records), and the timeline draws it.
"""

from __future__ import annotations

from PySide6.QtCore import Slot
from PySide6.QtWidgets import QInputDialog

from app.state import marker_label


class MarkersArea:
    """Marker keys, the M dialog, and the markers drawn on the live timeline."""

    def _build_marker_actions(self) -> None:
        self._markers: list = []  # Events of this recording, as the engine wrote them
        self.marker_dialog: QInputDialog | None = None
        self.marker_actions = []
        for digit in range(1, 10):
            action = self._action(f"Marker {digit}", str(digit), self._marker_key(digit))
            self.addAction(action)
            self.marker_actions.append(action)
        self.marker_text_action = self._action("Marker with a &label…", "M", self._on_marker_text_action_triggered)
        self.addAction(self.marker_text_action)
        self.engine.marker_added.connect(self._on_engine_marker_added)

    def _marker_key(self, digit: int):
        return lambda: self.add_marker(marker_label(self.settings.marker_labels, digit))  # no arguments: not QAction's `checked`

    def add_marker(self, label: str) -> None:
        """A marker at the frame on screen (written only while recording; otherwise the status bar says so)."""
        packet = self.last_packet
        if not self.is_recording:
            self.statusBar().showMessage(f"Marker {label!r} not written: markers are written while recording (R)", 4000)
            return
        if packet is None:
            self.statusBar().showMessage("No frame yet: nothing to mark", 3000)
            return
        frame = packet.result.index if packet.result is not None else None
        self.engine.add_marker(label, packet.media_time_s, frame)

    @Slot()
    def _on_marker_text_action_triggered(self) -> None:
        """A non-modal dialog: the video goes on while the label is typed; the marker keeps the moment M was pressed."""
        packet = self.last_packet
        if packet is None or not self.is_recording:
            self.add_marker("M")  # says why nothing is written
            return
        moment = (packet.media_time_s, packet.result.index if packet.result is not None else None)
        dialog = QInputDialog(self)
        dialog.setWindowTitle("Marker")
        dialog.setLabelText(f"Label for the marker at {moment[0]:.2f} s:")
        dialog.textValueSelected.connect(lambda text: text.strip() and self.engine.add_marker(text.strip(), *moment))
        dialog.finished.connect(dialog.deleteLater)
        self.marker_dialog = dialog
        dialog.open()

    @Slot(object)
    def _on_engine_marker_added(self, event) -> None:
        self._markers.append(event)
        self.statusBar().showMessage(f"Marker {event.label!r} at {event.time_s:.2f} s ({event.source})", 3000)
        self._draw_markers()

    def _draw_markers(self) -> None:
        """Lines at each marker's time relative to the newest frame shown (the timeline's x axis)."""
        packet = self.last_packet
        if packet is None:
            return
        now = packet.media_time_s
        self.timeline.set_markers([(e.time_s - now, e.label) for e in self._markers[-50:]])

    def _clear_markers(self) -> None:
        self._markers = []
        self.timeline.set_markers([])

"""The whole recorded timeline of one face, with markers, a cursor and in/out points; click or drag to seek (pyqtgraph)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QVBoxLayout, QWidget

import app._compat  # noqa: F401  (first: PySide6 6.12 on Python 3.11, see app/_compat.py)
from app.widgets.style import qcolor
from app.widgets.timeline_plot import probability_plot


class ReviewTimeline(QWidget):
    """Curves per class over the whole recording; ``seek_requested(time_s)`` on a click or when the cursor is dragged."""

    seek_requested = Signal(float)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        import pyqtgraph as pg

        self._pg = pg
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.plot = probability_plot()
        self.plot.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # the arrow keys step frames (the window's shortcuts), not scroll
        layout.addWidget(self.plot)
        self._curves: list = []
        self._markers: list = []
        self.cursor = pg.InfiniteLine(angle=90, movable=True, pen=pg.mkPen("#ffd24a", width=2))
        self.cursor.setZValue(10)
        self.plot.addItem(self.cursor)
        self.in_line = pg.InfiniteLine(angle=90, movable=False, pen=pg.mkPen("#4adf7a", width=2))
        self.out_line = pg.InfiniteLine(angle=90, movable=False, pen=pg.mkPen("#ff6b6b", width=2))
        for line in (self.in_line, self.out_line):
            line.setVisible(False)
            self.plot.addItem(line)
        self._setting = False
        self.cursor.sigPositionChanged.connect(self._on_cursor_position_changed)
        self.plot.scene().sigMouseClicked.connect(self._on_scene_mouse_clicked)
        self.setMinimumHeight(170)

    def set_series(self, times: np.ndarray, probs: np.ndarray, class_names: Sequence[str], colors: dict[str, Sequence[int]],
                   span: tuple[float, float]) -> None:
        for c in self._curves:
            self.plot.removeItem(c)
        self._curves = []
        for i, name in enumerate(class_names):
            curve = self._pg.PlotCurveItem(times, probs[:, i], pen=self._pg.mkPen(qcolor(colors[name]), width=2), name=name)
            self.plot.addItem(curve)
            self._curves.append(curve)
        self.plot.setXRange(span[0], max(span[1], span[0] + 0.1), padding=0.01)

    def set_markers(self, markers: Sequence[tuple[float, str]]) -> None:
        pg = self._pg
        for line in self._markers:
            self.plot.removeItem(line)
        self._markers = []
        for t, label in markers:
            line = pg.InfiniteLine(pos=t, angle=90, movable=False, pen=pg.mkPen("#f0f0f0", width=1, style=Qt.PenStyle.DashLine),
                                   label=label, labelOpts={"position": 0.92, "color": "#f0f0f0"})
            self.plot.addItem(line)
            self._markers.append(line)

    def set_cursor(self, time_s: float) -> None:
        self._setting = True
        try:
            self.cursor.setValue(time_s)
        finally:
            self._setting = False

    def set_in_out(self, in_s: float | None, out_s: float | None) -> None:
        for line, value in ((self.in_line, in_s), (self.out_line, out_s)):
            line.setVisible(value is not None)
            if value is not None:
                line.setValue(value)

    def _on_cursor_position_changed(self, line) -> None:
        if not self._setting:
            self.seek_requested.emit(float(line.value()))

    def _on_scene_mouse_clicked(self, event) -> None:
        if event.button() != Qt.MouseButton.LeftButton:
            return
        view = self.plot.getPlotItem().vb
        if not view.sceneBoundingRect().contains(event.scenePos()):
            return
        self.seek_requested.emit(float(view.mapSceneToView(event.scenePos()).x()))

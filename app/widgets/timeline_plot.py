"""The selected face's class probabilities over the last seconds (pyqtgraph)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QVBoxLayout,
    QWidget,
)

import app._compat  # noqa: F401  (first: PySide6 6.12 on Python 3.11, see app/_compat.py)
from app.widgets.style import BG, qcolor


def probability_plot():
    """A still pyqtgraph chart of probabilities (0..1) over seconds: no menu, no mouse zoom, no buttons."""
    import pyqtgraph as pg

    plot = pg.PlotWidget(background=BG)
    plot.setMenuEnabled(False)
    plot.setMouseEnabled(x=False, y=False)
    plot.hideButtons()
    plot.setYRange(0.0, 1.0, padding=0.02)
    plot.setLabel("bottom", "seconds")
    return plot


class TimelinePlot(QWidget):
    """pyqtgraph chart of the selected face's class probabilities over the last N seconds."""

    def __init__(self, parent: QWidget | None = None, *, seconds: float = 20.0) -> None:
        super().__init__(parent)
        import pyqtgraph as pg

        self._pg = pg
        self.seconds = seconds
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.plot = probability_plot()
        self.plot.setXRange(-seconds, 0.0, padding=0.0)
        # no grid: grid lines belong to the axis items, which would then repaint (slowly) with every curve update
        self.plot.getPlotItem().setContentsMargins(4, 4, 8, 4)
        # the legend is a label above the chart: inside it would hide the curves it explains
        self.title = QLabel("Timeline")
        self.title.setStyleSheet("color: #dcdee4; font-weight: bold; padding: 2px 6px;")
        self.legend = QLabel()
        self.legend.setTextFormat(Qt.TextFormat.RichText)
        self.legend.setStyleSheet("padding: 2px 6px;")
        header = QHBoxLayout()
        header.addWidget(self.title)
        header.addStretch(1)
        header.addWidget(self.legend)
        layout.addLayout(header)
        layout.addWidget(self.plot)
        self._curves: list = []
        self.setMinimumHeight(150)

    def set_seconds(self, seconds: float) -> None:
        self.seconds = seconds
        self.plot.setXRange(-seconds, 0.0, padding=0.0)

    def set_classes(self, class_names: Sequence[str], colors: dict[str, Sequence[int]]) -> None:
        for c in self._curves:
            self.plot.removeItem(c)
        self.legend.setText("&nbsp;&nbsp;".join(
            f'<span style="color:{qcolor(colors[n]).name()}">━━</span>&nbsp;<span style="color:#c8cad0">{n}</span>'
            for n in class_names))
        self._curves = []
        for name in class_names:  # PlotCurveItem: a quarter of PlotDataItem's cost per update
            curve = self._pg.PlotCurveItem(pen=self._pg.mkPen(qcolor(colors[name]), width=2), name=name, skipFiniteCheck=True)
            self.plot.addItem(curve)
            self._curves.append(curve)

    def set_series(self, times: np.ndarray, probs: np.ndarray, face_id: int | None, *, note: str = "") -> None:
        title = "Timeline" if face_id is None else f"Timeline · face {face_id}"
        self.title.setText(f"{title}   {note}" if note else title)
        for i, curve in enumerate(self._curves):
            if len(times) and i < probs.shape[1]:
                curve.setData(times, probs[:, i])
            else:
                curve.setData(np.zeros(0), np.zeros(0))

    def set_markers(self, markers: Sequence[tuple[float, str]]) -> None:
        """Event markers as labelled vertical lines at x (seconds relative to now, like the curves); outside the view: hidden."""
        pg = self._pg
        lines = getattr(self, "_markers", [])
        while len(lines) < len(markers):
            line = pg.InfiniteLine(angle=90, movable=False, pen=pg.mkPen("#f0f0f0", width=1, style=Qt.PenStyle.DashLine),
                                   label="", labelOpts={"position": 0.92, "color": "#f0f0f0", "anchors": [(0, 0), (0, 0)]})
            self.plot.addItem(line)
            lines.append(line)
        for line, (x, label) in zip(lines, markers):
            line.setPos(x)
            line.label.setFormat(label)
            line.setVisible(-self.seconds <= x <= 0.5)
        for line in lines[len(markers):]:
            line.setVisible(False)
        self._markers = lines

    def marker_labels(self) -> list[str]:
        return [line.label.format for line in getattr(self, "_markers", []) if line.isVisible()]  # (tests)

    def curve_lengths(self) -> list[int]:
        return [0 if c.xData is None else len(c.xData) for c in self._curves]  # (tests)

"""Per-face probability bars, one row per class."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PySide6.QtCore import QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFont, QPainter
from PySide6.QtWidgets import (
    QSizePolicy,
    QWidget,
)

import app._compat  # noqa: F401  (first: PySide6 6.12 on Python 3.11, see app/_compat.py)
from app.widgets.style import BG, FG, MUTED, SELECTED_BG, TRACK, qcolor


class ProbabilityPanel(QWidget):
    """Per-face probability bars, one row per class, each class in its app-wide colour."""

    face_clicked = Signal(int)

    ROW = 17
    HEADER = 24
    GAP = 10

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._classes: tuple[str, ...] = ()
        self._colors: dict[str, QColor] = {}
        self._faces: list[tuple[int, np.ndarray, str, float]] = []
        self._selected: int | None = None
        self._rects: list[tuple[QRectF, int]] = []
        self.setMinimumWidth(240)
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Minimum)

    def set_classes(self, class_names: Sequence[str], colors: dict[str, Sequence[int]]) -> None:
        self._classes = tuple(class_names)
        self._colors = {n: qcolor(colors[n]) for n in self._classes}
        self.updateGeometry()
        self.update()

    def set_faces(self, faces: Sequence[tuple[int, np.ndarray, str, float]], selected: int | None) -> None:
        """faces: (face_id, probs (C,), dominant, confidence)."""
        self._faces = list(faces)
        self._selected = selected
        self.updateGeometry()
        self.update()

    @property
    def face_count(self) -> int:
        return len(self._faces)

    def block_height(self) -> int:
        return self.HEADER + self.ROW * len(self._classes) + self.GAP

    def sizeHint(self) -> QSize:
        return QSize(260, max(60, self.block_height() * max(1, len(self._faces))))

    def minimumSizeHint(self) -> QSize:
        return QSize(240, 60)

    def paintEvent(self, event) -> None:  # noqa: N802
        p = QPainter(self)  # no antialiasing, only filled rectangles: this repaints with every frame
        p.fillRect(self.rect(), BG)
        self._rects = []
        if not self._faces:
            p.setPen(MUTED)
            p.drawText(self.rect().adjusted(8, 8, -8, -8), Qt.AlignmentFlag.AlignTop | Qt.TextFlag.TextWordWrap, "No face detected")
            return
        width = self.width()
        label_w = 78
        pct_w = 40
        y = 4
        bold = QFont(self.font())
        bold.setBold(True)
        for face_id, probs, dominant, conf in self._faces:
            block = QRectF(2, y, width - 4, self.block_height() - self.GAP + 2)
            self._rects.append((block, face_id))
            if face_id == self._selected and len(self._faces) > 1:
                p.fillRect(block, SELECTED_BG)
            p.setFont(bold)
            p.setPen(self._colors.get(dominant, FG))
            p.drawText(QRectF(8, y + 2, width - 16, self.HEADER - 4), Qt.AlignmentFlag.AlignVCenter,
                       f"Face {face_id}   {dominant} {conf * 100:.0f}%")
            p.setFont(self.font())
            y += self.HEADER
            for i, name in enumerate(self._classes):
                v = float(probs[i]) if i < len(probs) else 0.0
                p.setPen(FG)
                p.drawText(QRectF(8, y, label_w, self.ROW), Qt.AlignmentFlag.AlignVCenter, name)
                bar = QRectF(8 + label_w, y + 4, max(0.0, width - 16 - label_w - pct_w), self.ROW - 8)
                p.fillRect(bar, TRACK)
                p.fillRect(QRectF(bar.x(), bar.y(), bar.width() * min(max(v, 0.0), 1.0), bar.height()), self._colors.get(name, FG))
                p.setPen(MUTED)
                p.drawText(QRectF(width - 8 - pct_w, y, pct_w, self.ROW),
                           Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignRight, f"{v * 100:.0f}%")
                y += self.ROW
            y += self.GAP

    def mousePressEvent(self, event) -> None:  # noqa: N802
        for rect, face_id in self._rects:
            if rect.contains(QPointF(event.position())):
                self.face_clicked.emit(face_id)
                return
        super().mousePressEvent(event)

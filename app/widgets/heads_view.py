"""The selected face's attention tiles: crop, fused map, one per head."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF, QRectF, QSize, Qt
from PySide6.QtGui import QFont, QImage, QPainter
from PySide6.QtWidgets import (
    QSizePolicy,
    QWidget,
)

import app._compat  # noqa: F401  (first: PySide6 6.12 on Python 3.11, see app/_compat.py)
from app.widgets.style import BG, FG, MUTED, bgr_to_qimage


class HeadsView(QWidget):
    """The selected face's aligned crop, fused attention and each head's attention, as tiles.

    Tiles are drawn at their own size (no scaling on the UI thread); the columns follow the width.
    """

    TILE = 96  # the tile size of dan_core.pipeline.heatmap.head_strip
    LABEL = 16
    TITLE = 22

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._array: np.ndarray | None = None
        self._image: QImage | None = None
        self._labels: list[str] = ["face", "fused", *(f"head {i + 1}" for i in range(4))]
        self._title = "Attention"
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Fixed)
        self.setMinimumWidth(3 * self.TILE + 12)

    def set_strip(self, strip: np.ndarray | None, num_heads: int, face_id: int | None) -> None:
        if strip is self._array and strip is not None and len(self._labels) == num_heads + 2:
            return  # the engine refreshes the tiles ~12 times a second; nothing to repaint in between
        self._array = strip
        self._image = None if strip is None else bgr_to_qimage(strip)
        labels = ["face", "fused", *(f"head {i + 1}" for i in range(num_heads))]
        if labels != self._labels:
            self._labels = labels
            self.setFixedHeight(self.heightForWidth(self.width()))
        self._title = "Attention" if face_id is None else f"Attention · face {face_id}"
        self.update()

    @property
    def has_strip(self) -> bool:
        return self._image is not None

    def _columns(self, w: int) -> int:
        return max(1, (w - 4) // (self.TILE + 4))

    def sizeHint(self) -> QSize:
        return QSize(3 * self.TILE + 12, self.heightForWidth(3 * self.TILE + 12))

    def hasHeightForWidth(self) -> bool:  # noqa: N802
        return True

    def heightForWidth(self, w: int) -> int:  # noqa: N802
        rows = -(-len(self._labels) // self._columns(w))
        return self.TITLE + rows * (self.TILE + self.LABEL) + 4

    def resizeEvent(self, event) -> None:  # noqa: N802
        self.setFixedHeight(self.heightForWidth(self.width()))
        super().resizeEvent(event)

    def paintEvent(self, event) -> None:  # noqa: N802
        p = QPainter(self)
        p.fillRect(self.rect(), BG)
        p.setPen(FG)
        bold = QFont(self.font())
        bold.setBold(True)
        p.setFont(bold)
        p.drawText(QRectF(6, 2, self.width() - 12, 18), Qt.AlignmentFlag.AlignVCenter, self._title)
        p.setFont(self.font())
        if self._image is None:
            p.setPen(MUTED)
            p.drawText(QRectF(6, self.TITLE, self.width() - 12, 40), Qt.AlignmentFlag.AlignTop | Qt.TextFlag.TextWordWrap,
                       "Select a face to see where each attention head looks")
            return
        s = self._image.height()
        n = self._image.width() // s
        cols = self._columns(self.width())
        x0 = (self.width() - cols * (self.TILE + 4)) // 2 + 2
        p.setPen(MUTED)
        for i in range(n):
            r, c = divmod(i, cols)
            x = x0 + c * (self.TILE + 4)
            y = self.TITLE + r * (self.TILE + self.LABEL)
            p.drawImage(QPointF(x, y), self._image, QRectF(i * s, 0, s, s))
            label = self._labels[i] if i < len(self._labels) else ""
            p.drawText(QRectF(x, y + s, s, self.LABEL), Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop, label)

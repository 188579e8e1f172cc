"""The annotated frame, centred with its aspect ratio; a click selects a face."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QImage, QPainter
from PySide6.QtWidgets import (
    QSizePolicy,
    QWidget,
)

import app._compat  # noqa: F401  (first: PySide6 6.12 on Python 3.11, see app/_compat.py)
from app.widgets.style import BG, MUTED, bgr_to_qimage


class VideoView(QWidget):
    """The annotated frame, centred with its aspect ratio; click selects a face.

    The engine already scaled the picture to this widget's size (``view_resized`` tells it the
    size), so painting is a plain 1:1 blit; only right after a resize is a frame scaled here.
    """

    frame_clicked = Signal(float, float)  # frame pixel coordinates
    view_resized = Signal(int, int)  # device pixels

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._array: np.ndarray | None = None
        self._image: QImage | None = None
        self._frame_size: tuple[int, int] = (1, 1)
        self._placeholder = "Drop a video or an image here, or use File ▸ Open (Ctrl+O)"
        self.setMinimumSize(320, 180)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)
        self.setCursor(Qt.CursorShape.PointingHandCursor)

    def sizeHint(self) -> QSize:
        return QSize(960, 540)

    def device_size(self) -> tuple[int, int]:
        dpr = self.devicePixelRatioF()
        return int(self.width() * dpr), int(self.height() * dpr)

    def set_frame(self, image: np.ndarray | None, frame_size: tuple[int, int] | None = None) -> None:
        """``image``: BGR, ideally already scaled to fit; ``frame_size``: (w, h) of the analysed frame."""
        self._array = image
        if image is None:
            self._image = None
        else:
            self._image = bgr_to_qimage(image)
            self._image.setDevicePixelRatio(self.devicePixelRatioF())
            self._frame_size = frame_size or (image.shape[1], image.shape[0])
        self.update()

    def set_placeholder(self, text: str) -> None:
        self._placeholder = text
        self.update()

    def has_frame(self) -> bool:
        return self._image is not None

    def _target(self) -> QRectF:
        fw, fh = self._frame_size
        scale = min(self.width() / fw, self.height() / fh)
        w, h = fw * scale, fh * scale
        return QRectF((self.width() - w) / 2, (self.height() - h) / 2, w, h)

    def resizeEvent(self, event) -> None:  # noqa: N802
        super().resizeEvent(event)
        self.view_resized.emit(*self.device_size())

    def paintEvent(self, event) -> None:  # noqa: N802 (Qt API)
        p = QPainter(self)
        p.fillRect(self.rect(), BG)
        if self._image is None:
            p.setPen(MUTED)
            f = p.font()
            f.setPointSizeF(f.pointSizeF() * 1.2)
            p.setFont(f)
            p.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, self._placeholder)
            return
        target = self._target()
        img = self._image
        dpr = img.devicePixelRatio()
        if abs(img.width() / dpr - target.width()) <= 1.5 and abs(img.height() / dpr - target.height()) <= 1.5:
            p.drawImage(QPointF(round(target.x()), round(target.y())), img)  # 1:1, the common case
        else:
            p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, True)  # until the engine catches up with a resize
            p.drawImage(target, img)

    def mousePressEvent(self, event) -> None:  # noqa: N802
        if self._image is None or event.button() != Qt.MouseButton.LeftButton:
            return super().mousePressEvent(event)
        t = self._target()
        pos = event.position()
        if not t.contains(pos):
            return
        scale = self._frame_size[0] / t.width()
        self.frame_clicked.emit((pos.x() - t.x()) * scale, (pos.y() - t.y()) * scale)

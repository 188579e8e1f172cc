"""The window's widgets. They only paint what they are given; none of them computes anything heavy."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from PySide6.QtCore import QPointF, QRectF, QSize, Qt, Signal, Slot
from PySide6.QtGui import QColor, QFont, QImage, QPainter, QPalette
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSizePolicy,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

import app._compat  # noqa: F401  (first: PySide6 6.12 on Python 3.11, see app/_compat.py)
from app.state import BACKENDS, MAX_FACES_LIMIT, AppSettings

BG = QColor(24, 26, 30)
FG = QColor(220, 222, 228)
MUTED = QColor(140, 144, 152)
TRACK = QColor(50, 53, 60)
SELECTED_BG = QColor(38, 41, 48)


def bgr_to_qimage(image: np.ndarray) -> QImage:
    """Wrap a C-contiguous uint8 array without copying; keep ``image`` alive while the QImage is in use.

    (H, W, 4) BGRA (``cv2.COLOR_BGR2BGRA``) is Qt's native RGB32 layout on little-endian machines (all that
    PySide6 ships for) and paints without conversion; (H, W, 3) BGR works too, but Qt converts it on every paint.
    """
    h, w = image.shape[:2]
    fmt = QImage.Format.Format_RGB32 if image.shape[2] == 4 else QImage.Format.Format_BGR888
    return QImage(image.data, w, h, int(image.strides[0]), fmt)


def dark_palette() -> QPalette:
    """The app's dark colours (with the Fusion style, see app.main)."""
    pal = QPalette()
    roles = {
        QPalette.ColorRole.Window: BG, QPalette.ColorRole.WindowText: FG, QPalette.ColorRole.Base: QColor(32, 34, 40),
        QPalette.ColorRole.AlternateBase: QColor(38, 41, 48), QPalette.ColorRole.Text: FG, QPalette.ColorRole.Button: QColor(42, 45, 52),
        QPalette.ColorRole.ButtonText: FG, QPalette.ColorRole.Highlight: QColor(64, 120, 200),
        QPalette.ColorRole.HighlightedText: QColor(255, 255, 255), QPalette.ColorRole.ToolTipBase: QColor(32, 34, 40),
        QPalette.ColorRole.ToolTipText: FG, QPalette.ColorRole.PlaceholderText: MUTED, QPalette.ColorRole.Light: QColor(70, 74, 84),
        QPalette.ColorRole.Midlight: QColor(58, 62, 71), QPalette.ColorRole.Mid: QColor(48, 51, 58),
        QPalette.ColorRole.Dark: QColor(20, 21, 24), QPalette.ColorRole.Shadow: QColor(0, 0, 0),
    }
    for role, colour in roles.items():
        pal.setColor(role, colour)
    for role in (QPalette.ColorRole.WindowText, QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText):
        pal.setColor(QPalette.ColorGroup.Disabled, role, QColor(107, 111, 120))
    return pal


def qcolor(bgr: Sequence[int]) -> QColor:
    b, g, r = (int(v) for v in bgr[:3])
    return QColor(r, g, b)


# ------------------------------------------------------------------------------------------ video


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


# ------------------------------------------------------------------------------------ probabilities


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


# ------------------------------------------------------------------------------------------- heads


class HeadsView(QWidget):
    """The selected face's aligned crop, fused attention and each head's attention, as tiles.

    Tiles are drawn at their own size (no scaling on the UI thread); the columns follow the width.
    """

    TILE = 96  # the engine's head_strip tile size
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


# ----------------------------------------------------------------------------------------- timeline


class TimelinePlot(QWidget):
    """pyqtgraph chart of the selected face's class probabilities over the last N seconds."""

    def __init__(self, parent: QWidget | None = None, *, seconds: float = 20.0) -> None:
        super().__init__(parent)
        import pyqtgraph as pg

        self._pg = pg
        self.seconds = seconds
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.plot = pg.PlotWidget(background=BG)
        self.plot.setMenuEnabled(False)
        self.plot.setMouseEnabled(x=False, y=False)
        self.plot.hideButtons()
        self.plot.setYRange(0.0, 1.0, padding=0.02)
        self.plot.setXRange(-seconds, 0.0, padding=0.0)
        # no grid: grid lines belong to the axis items, which would then repaint (slowly) with every curve update
        self.plot.setLabel("bottom", "seconds")
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

    def curve_lengths(self) -> list[int]:
        return [0 if c.xData is None else len(c.xData) for c in self._curves]  # (tests)


# ------------------------------------------------------------------------------------------ banner


class Banner(QFrame):
    """An in-window message with what to do next (buttons); errors never become modal pop-ups."""

    STYLES = {
        "error": "background:#5a1f24; color:#ffe3e3; border:1px solid #a33a44;",
        "warning": "background:#5a4a1f; color:#fff3d6; border:1px solid #a88a33;",
        "info": "background:#1f3a5a; color:#e3efff; border:1px solid #3a6aa3;",
    }

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.level = ""
        self.kind = ""
        self._layout = QHBoxLayout(self)
        self._layout.setContentsMargins(10, 6, 6, 6)
        self.label = QLabel()
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self._layout.addWidget(self.label, 1)
        self._buttons: list[QPushButton] = []
        close = QToolButton()
        close.setText("✕")
        close.setAutoRaise(True)
        close.setToolTip("Dismiss")
        close.clicked.connect(self._on_close_clicked)
        self._close = close
        self._layout.addWidget(close)
        self.hide()

    @property
    def text(self) -> str:
        return self.label.text()

    def show_message(self, level: str, text: str, actions: Sequence[tuple[str, Callable[[], None]]] = (), *, kind: str = "") -> None:
        for b in self._buttons:
            self._layout.removeWidget(b)
            b.deleteLater()
        self._buttons = []
        self.level, self.kind = level, kind
        style = self.STYLES.get(level, self.STYLES["info"])
        self.setStyleSheet(f"Banner {{{style} border-radius:4px;}} QLabel {{ border:none; background:transparent; }}")
        self.label.setText(text)
        for label, callback in actions:
            b = QPushButton(label)
            b.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            b.clicked.connect(callback)
            self._layout.insertWidget(self._layout.count() - 1, b)
            self._buttons.append(b)
        self.show()

    def button_labels(self) -> list[str]:
        return [b.text() for b in self._buttons]

    def click(self, label: str) -> None:
        for b in self._buttons:
            if b.text() == label:
                b.click()
                return
        raise KeyError(label)

    @Slot()
    def _on_close_clicked(self) -> None:
        self.clear()

    def clear(self) -> None:
        self.level = self.kind = ""
        self.hide()


# ---------------------------------------------------------------------------------------- settings


class _PathEdit(QWidget):
    def __init__(self, value: str, *, placeholder: str, file_filter: str | None, directory: bool = False) -> None:
        super().__init__()
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        self.edit = QLineEdit(value)
        self.edit.setPlaceholderText(placeholder)
        self.edit.setClearButtonEnabled(True)
        btn = QPushButton("Browse…")
        btn.clicked.connect(self._on_browse_clicked)
        lay.addWidget(self.edit, 1)
        lay.addWidget(btn)
        self._filter = file_filter
        self._directory = directory

    @Slot()
    def _on_browse_clicked(self) -> None:
        start = self.edit.text() or str(Path.home())
        if self._directory:
            path = QFileDialog.getExistingDirectory(self, "Choose a folder", start)
        else:
            path, _ = QFileDialog.getOpenFileName(self, "Choose a file", start, self._filter or "")
        if path:
            self.edit.setText(path)

    def value(self) -> str:
        return self.edit.text().strip()


class SettingsDialog(QDialog):
    """Model, landmarker, backend, smoothing, max faces, record folder."""

    def __init__(self, settings: AppSettings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("dan-fer settings")
        self.setMinimumWidth(520)
        form = QFormLayout(self)
        self.model = _PathEdit(settings.model, placeholder="default: the model in models/",
                               file_filter="ONNX models (*.onnx);;All files (*)")
        self.landmarker = _PathEdit(settings.landmarker, placeholder="default: $DAN_FER_LANDMARKER, cache or download",
                                    file_filter="MediaPipe task (*.task);;All files (*)")
        self.backend = QComboBox()
        self.backend.addItems(list(BACKENDS))
        self.backend.setCurrentText(settings.backend)
        self.smoothing = QDoubleSpinBox()
        self.smoothing.setRange(0.0, 0.95)
        self.smoothing.setSingleStep(0.05)
        self.smoothing.setValue(settings.smoothing)
        self.smoothing.setToolTip("Weight of the previous probabilities per face (0 = no smoothing)")
        self.max_faces = QSpinBox()
        self.max_faces.setRange(1, MAX_FACES_LIMIT)
        self.max_faces.setValue(settings.max_faces)
        self.timeline = QSpinBox()
        self.timeline.setRange(5, 300)
        self.timeline.setSuffix(" s")
        self.timeline.setValue(settings.timeline_seconds)
        self.record_dir = _PathEdit(settings.record_dir, placeholder="folder for recordings and snapshots", file_filter=None,
                                    directory=True)
        self.record_video = QCheckBox("also record the annotated video (.mp4)")
        self.record_video.setChecked(settings.record_video)
        form.addRow("Model (.onnx)", self.model)
        form.addRow("Face landmarker (.task)", self.landmarker)
        form.addRow("Backend", self.backend)
        form.addRow("Smoothing", self.smoothing)
        form.addRow("Max faces", self.max_faces)
        form.addRow("Timeline length", self.timeline)
        form.addRow("Record folder", self.record_dir)
        form.addRow("", self.record_video)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)
        self._base = settings

    def result_settings(self) -> AppSettings:
        s = AppSettings(**self._base.to_mapping())
        s.model = self.model.value()
        s.landmarker = self.landmarker.value()
        s.backend = self.backend.currentText()
        s.smoothing = float(self.smoothing.value())
        s.max_faces = int(self.max_faces.value())
        s.timeline_seconds = int(self.timeline.value())
        s.record_dir = self.record_dir.value() or self._base.record_dir
        s.record_video = self.record_video.isChecked()
        return s.validated()

"""The app's colours and the one way a NumPy picture becomes a QImage."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PySide6.QtGui import QColor, QImage, QPalette

import app._compat  # noqa: F401  (first: PySide6 6.12 on Python 3.11, see app/_compat.py)

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

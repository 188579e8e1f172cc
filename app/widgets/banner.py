"""Messages above the picture with buttons for the next steps: one ``Banner`` per kind, stacked in a ``BannerStack``."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from PySide6.QtCore import Qt, Slot
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

import app._compat  # noqa: F401  (first: PySide6 6.12 on Python 3.11, see app/_compat.py)


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


class BannerStack(QVBoxLayout):
    """The banners above the picture, one per kind of message; showing a kind again replaces its text and buttons."""

    def __init__(self) -> None:
        super().__init__()
        self.setSpacing(4)
        self._banners: dict[str, Banner] = {}

    def show_message(self, kind: str, level: str, text: str, actions: Sequence[tuple[str, Callable[[], None]]] = ()) -> None:
        banner = self._banners.get(kind)
        if banner is None:
            banner = Banner()
            self._banners[kind] = banner
            self.addWidget(banner)
        banner.show_message(level, text, actions, kind=kind)

    def clear(self, *kinds: str) -> None:
        for kind in kinds:
            banner = self._banners.get(kind)
            if banner is not None:
                banner.clear()

    def get(self, kind: str) -> Banner | None:
        """The banner of ``kind`` while it is shown, else None."""
        banner = self._banners.get(kind)
        return banner if banner is not None and not banner.isHidden() else None

    def texts(self) -> dict[str, str]:
        return {kind: b.text for kind, b in self._banners.items() if not b.isHidden()}

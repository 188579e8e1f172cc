"""Small Qt helpers the window and its areas share: an action with a shortcut, a running timer, connections undone together."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QTimer, SignalInstance
from PySide6.QtGui import QAction, QKeySequence


def make_action(parent: QObject, text: str, shortcut: Any, slot: Callable[[], Any]) -> QAction:
    """A QAction owned by ``parent``; ``shortcut`` is a key string, a ``QKeySequence.StandardKey`` or None."""
    action = QAction(text, parent)
    if shortcut is not None:
        action.setShortcut(QKeySequence(shortcut))
    action.triggered.connect(slot)
    return action


def every(parent: QObject, ms: int, slot: Callable[[], Any]) -> QTimer:
    """A running timer owned by ``parent`` that calls ``slot`` every ``ms`` milliseconds."""
    timer = QTimer(parent)
    timer.setInterval(ms)
    timer.timeout.connect(slot)
    timer.start()
    return timer


class Connections:
    """The signal connections an object made, so that it can undo them all: what it connects it disconnects."""

    def __init__(self) -> None:
        self._made: list[tuple[SignalInstance, Callable[..., Any]]] = []

    def connect(self, signal: SignalInstance, slot: Callable[..., Any]) -> None:
        signal.connect(slot)
        self._made.append((signal, slot))

    def disconnect_all(self) -> None:
        for signal, slot in self._made:
            try:
                signal.disconnect(slot)
            except (RuntimeError, TypeError):  # already gone with its object
                pass
        self._made.clear()

"""Work-arounds for the Qt binding in use, applied when this module is first imported.

The window, the engine, the review window and every widget module import it before PySide6
(``import app._compat``), and ``app.main.prepare_qt_environment`` calls both functions again before
the QApplication exists. Importing the ``app`` package alone applies nothing (it imports nothing).

PySide6 6.12 treats None, True and False as immortal objects (they are from Python 3.12 on,
PEP 683) and no longer counts its references to them. On Python 3.11 every call of a void Qt
method (QPainter.setPen, QLabel.setText, ...) and every Signal.emit then takes one reference
from None or True/False that it never gave, and after enough calls the interpreter aborts with
"Fatal Python error: none_dealloc" (seconds to minutes into a live view). pyproject.toml pins
PySide6 < 6.12 on Python < 3.12; for an environment that has 6.12 there anyway (installed by
hand, or pulled in by another package), we give those three objects the effectively unbounded
reference count they have on Python 3.12+. Elsewhere it does nothing.

OpenCV points QT_QPA_PLATFORM_PLUGIN_PATH at its own Qt 5 plugins when it is imported; PySide6
must load its own, so ``use_pyside_plugins`` imports cv2 first and then removes that variable.
"""

from __future__ import annotations

import ctypes
import os
import sys

_PINNED = 1 << 48  # ~2.8e14 references: more than any process will ever drop


def make_singletons_immortal() -> bool:
    """Raise the reference counts of None, True and False out of reach; True when it was needed."""
    if sys.version_info >= (3, 12) or sys.implementation.name != "cpython":
        return False
    for obj in (None, True, False):
        refcnt = ctypes.c_ssize_t.from_address(id(obj))  # ob_refcnt is the first field of every object
        if refcnt.value < _PINNED:
            refcnt.value += _PINNED
    return True


def use_pyside_plugins() -> None:
    """Import cv2 now (its environment change happens once) and undo its Qt plugin path."""
    import cv2  # noqa: F401

    os.environ.pop("QT_QPA_PLATFORM_PLUGIN_PATH", None)


make_singletons_immortal()
use_pyside_plugins()

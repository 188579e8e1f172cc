"""Ctrl+C, SIGTERM and SIGHUP (a closed terminal) close the desktop app like its close button."""

from __future__ import annotations

import signal
import socket
import sys
from typing import Any

from PySide6.QtCore import QSocketNotifier
from PySide6.QtWidgets import QApplication

from dan_core.signals import STOP_SIGNALS


class SignalStop:
    """Ctrl+C, SIGTERM and SIGHUP close the window like its close button: the recording is finished and kept.

    Python runs signal handlers only between bytecodes, and Qt's event loop is C++: the C-level
    handler writes to a socket (``signal.set_wakeup_fd``) that a QSocketNotifier watches, which
    wakes the loop so the Python handler runs at once.
    """

    def __init__(self, window: Any, auto: Any = None, *, doing: str = "finishing the recording and closing") -> None:
        """``auto``: the --exit-after automation, whose own finish (screenshot, message) is used when present;
        ``doing``: what the one line on stderr says is done."""
        self.window = window
        self.auto = auto
        self.doing = doing
        self.signum = 0
        self._read, self._write = socket.socketpair()
        for sock in (self._read, self._write):
            sock.setblocking(False)
        self._old_fd = signal.set_wakeup_fd(self._write.fileno())
        self._notifier = QSocketNotifier(self._read.fileno(), QSocketNotifier.Type.Read, window)
        self._notifier.activated.connect(self._on_notifier_activated)
        self._old = {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGINT, *STOP_SIGNALS)}

    def _on_notifier_activated(self) -> None:
        try:
            self._read.recv(64)  # the signal numbers; the Python handler runs right after this slot
        except OSError:
            pass

    def _on_signal(self, signum, frame) -> None:
        if self.signum:
            return  # already stopping
        self.signum = signum
        print(f"dan-fer app: {signal.Signals(signum).name}: {self.doing}", file=sys.stderr)
        if self.auto is not None:
            self.auto._finish()  # stops the recording, prints where it went, quits
        else:
            self.window.close()
            QApplication.instance().quit()

    def restore(self) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)
        signal.set_wakeup_fd(self._old_fd)
        self._notifier.setEnabled(False)
        self._read.close()
        self._write.close()

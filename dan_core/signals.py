"""SIGTERM ends a run the way Ctrl+C (SIGINT) does: the recording is finished, the summary is printed.

``kill PID``, ``systemctl stop``, ``docker stop`` and session logout send SIGTERM, whose default
action ends the process at once, like ``kill -9``: no totals in the sidecar, an unfinished video.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager


class Terminated(KeyboardInterrupt):
    """Raised in the main thread on SIGTERM; a KeyboardInterrupt, so every Ctrl+C path handles it."""

    signum = signal.SIGTERM


def exit_status(exc: BaseException) -> int:
    """The shell's status for a run ended by this interrupt: 128 + the signal number (130 Ctrl+C, 143 SIGTERM)."""
    return 128 + int(getattr(exc, "signum", signal.SIGINT))


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM raises ``Terminated`` in the main thread (no-op elsewhere)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)

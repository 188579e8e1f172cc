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


class Stop:
    """Set by ``interrupts_between_frames``: the signal that asked the loop to stop (0: none)."""

    signum: int = 0

    @property
    def status(self) -> int:
        """The exit status for it (0 when no signal came)."""
        return 128 + self.signum if self.signum else 0


@contextmanager
def interrupts_between_frames() -> Iterator[Stop]:
    """Within the block, the first Ctrl+C or SIGTERM only sets ``Stop.signum``: the loop checks it after
    each frame, so the CSV and the video end on the same frame. A second one interrupts at once."""
    stop = Stop()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return

    def handler(signum, frame):
        if stop.signum:
            raise Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()
        stop.signum = signum

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)

"""SIGTERM and SIGHUP end a run the way Ctrl+C (SIGINT) does: the recording is finished, the summary is printed.

``kill PID``, ``systemctl stop``, ``docker stop`` and session logout send SIGTERM, and a closed
terminal sends SIGHUP; their default action ends the process at once, like ``kill -9``: no totals
in the sidecar, an unfinished video. A reader that went away (``| head``) is the same kind of end:
``BrokenPipeError`` counts as SIGPIPE (exit status 141), recorded as an interruption.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

# the signals that end a run like Ctrl+C does, besides SIGINT itself
STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name))
SIGPIPE = int(getattr(signal, "SIGPIPE", 13))


class Terminated(KeyboardInterrupt):
    """Raised in the main thread on SIGTERM or SIGHUP; a KeyboardInterrupt, so every Ctrl+C path handles it."""

    def __init__(self, signum: int = signal.SIGTERM) -> None:
        super().__init__()
        self.signum = signum


def exit_status(exc: BaseException) -> int:
    """The shell's status for a run ended by this interrupt: 128 + the signal number (130 Ctrl+C, 143 SIGTERM,
    129 SIGHUP, 141 for a broken pipe)."""
    if isinstance(exc, BrokenPipeError):
        return 128 + SIGPIPE
    return 128 + int(getattr(exc, "signum", signal.SIGINT))


def signal_name(status: int) -> str | None:
    """SIGTERM for 143 ...: the signal an exit status of 128 + N stands for (None for 0)."""
    return signal.Signals(status - 128).name if status > 128 else None


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM and SIGHUP raise ``Terminated`` in the main thread (no-op elsewhere)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise Terminated(signum)

    previous = {sig: signal.signal(sig, handler) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


class Stop:
    """Set by ``interrupts_between_frames``: the signal that asked the loop to stop (0: none)."""

    signum: int = 0

    @property
    def status(self) -> int:
        """The exit status for it (0 when no signal came)."""
        return 128 + self.signum if self.signum else 0


@contextmanager
def interrupts_between_frames() -> Iterator[Stop]:
    """Within the block, the first Ctrl+C, SIGTERM or SIGHUP only sets ``Stop.signum``: the loop checks it after
    each frame, so the CSV and the video end on the same frame. A second one interrupts at once."""
    stop = Stop()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return

    def handler(signum, frame):
        if stop.signum:
            raise KeyboardInterrupt() if signum == signal.SIGINT else Terminated(signum)
        stop.signum = signum

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, *STOP_SIGNALS)}
    try:
        yield stop
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)

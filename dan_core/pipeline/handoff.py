"""Handing work between threads: the newest-wins single slot, and a rate meter. Plain Python, no Qt.

The live path (capture -> detect -> classify -> viewer) hands each frame on through a
``LatestSlot``: a slow stage never builds a queue, it just sees fewer, fresher frames.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class RateMeter:
    """Events per second over a sliding window (capture, processed, displayed fps)."""

    def __init__(self, window_s: float = 1.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.window_s = window_s
        self._clock = clock
        self._ticks: deque[float] = deque()
        self._lock = threading.Lock()  # ticked on one thread, read on another

    def tick(self) -> None:
        now = self._clock()
        with self._lock:
            self._ticks.append(now)
            self._trim(now)

    def _trim(self, now: float) -> None:
        while self._ticks and now - self._ticks[0] > self.window_s:
            self._ticks.popleft()

    def rate(self) -> float:
        now = self._clock()
        with self._lock:
            self._trim(now)
            n = len(self._ticks)
            if n < 2:
                return 0.0
            span = self._ticks[-1] - self._ticks[0]
            return (n - 1) / span if span > 0 else 0.0

    def reset(self) -> None:
        with self._lock:
            self._ticks.clear()


class LatestSlot(Generic[T]):
    """A single-slot handoff between threads: ``put`` replaces what is there, ``take`` empties it.

    Newest wins: a slow consumer never builds a queue, it just sees fewer, fresher items.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._item: T | None = None
        self.dropped = 0

    def put(self, item: T) -> bool:
        """Store ``item``; True when the slot was empty (the consumer needs waking)."""
        with self._cond:
            was_empty = self._item is None
            if not was_empty:
                self.dropped += 1
            self._item = item
            self._cond.notify()
            return was_empty

    def take(self, timeout: float | None = 0.0) -> T | None:
        """The newest item or None; waits up to ``timeout`` seconds (None: forever) for one."""
        with self._cond:
            if self._item is None and timeout != 0.0:
                self._cond.wait(timeout)
            item, self._item = self._item, None
            if item is not None:
                self._cond.notify_all()  # wake a producer in wait_empty()
            return item

    def wait_empty(self, timeout: float) -> bool:
        """Wait until the consumer took the pending item (so a final marker does not replace it)."""
        with self._cond:
            return self._cond.wait_for(lambda: self._item is None, timeout)

    def clear(self) -> None:
        with self._cond:
            self._item = None

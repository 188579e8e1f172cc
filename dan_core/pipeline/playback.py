"""Playback: a plain thread reads a FrameSource into a single-slot handoff, as a viewer plays it.

Files are paced to real time (a late frame is skipped, far behind restarts the clock), pause and
seek are cooperative, and the newest frame wins: a slow consumer never builds a queue. The end of
a source (or its failure) arrives in the same slot as a ``SourceEnd`` marker.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from dan_core.errors import DanFerError
from dan_core.pipeline.handoff import LatestSlot, RateMeter
from dan_core.pipeline.sources import Frame, FrameSource

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Captured:
    """A frame as it left the source."""

    frame: Frame
    captured_at: float
    generation: int  # bumps on seek / source change: stale frames are recognisable


@dataclass(frozen=True)
class SourceEnd:
    """The source ended (a file's last frame) or failed; it travels in the frame slot."""

    generation: int
    lost: bool  # a live source stopped delivering
    error: str | None = None


class Capture:
    """Reads a FrameSource on its own thread into ``slot``; pause, seek and stop are cooperative."""

    LATE_RESYNC_S = 0.5  # further behind than this: restart the clock instead of racing to catch up

    def __init__(self, source: FrameSource, slot: LatestSlot, *, generation: int = 0) -> None:
        self.source = source
        self.slot = slot
        self.rate = RateMeter()
        self._generation = generation
        self._stop = threading.Event()
        self._cond = threading.Condition()
        self._paused = False
        self._seek: float | None = None
        self._thread = threading.Thread(target=self.run, name="dan-fer-capture", daemon=True)

    # --- called from other threads
    def start(self) -> None:
        self._thread.start()

    def set_paused(self, paused: bool) -> None:
        with self._cond:
            self._paused = paused
            self._cond.notify_all()

    @property
    def paused(self) -> bool:
        return self._paused

    def seek(self, time_s: float) -> None:
        with self._cond:
            self._seek = max(0.0, float(time_s))
            self._generation += 1
            self._cond.notify_all()

    @property
    def generation(self) -> int:
        return self._generation

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout)
        try:
            self.source.close()
        except Exception:  # closing must never raise into the UI
            log.exception("closing the source failed")

    # --- the thread
    def _end(self, marker: SourceEnd) -> None:
        while not self.slot.wait_empty(0.1) and not self._stop.is_set():
            pass  # the last frame (a still image's only one) must not be replaced by the end marker
        self.slot.put(marker)

    def run(self) -> None:
        src = self.source
        it = None
        clock: tuple[float, float] | None = None  # (wall, media) where real-time pacing (re)started
        try:
            while not self._stop.is_set():
                with self._cond:
                    if self._paused:
                        clock = None  # resume pacing from wherever playback continues
                    while self._paused and self._seek is None and not self._stop.is_set():
                        self._cond.wait(0.25)
                    seek, self._seek = self._seek, None
                    generation = self._generation
                if self._stop.is_set():
                    break
                if seek is not None:
                    src.seek(seek)
                    it, clock = None, None
                if it is None:
                    it = iter(src)
                frame = next(it, None)
                if frame is None:
                    error = getattr(src, "error", None)
                    if src.is_live:
                        self._end(SourceEnd(generation, lost=True, error=error))
                        return
                    self._end(SourceEnd(generation, lost=False, error=error))
                    with self._cond:  # wait for a seek (replay) or stop
                        while self._seek is None and not self._stop.is_set():
                            self._cond.wait(0.25)
                    continue
                if not src.is_live:
                    now = time.monotonic()
                    if clock is None:
                        clock = (now, frame.time_s)
                    due = clock[0] + (frame.time_s - clock[1])
                    if due - now > 0:
                        if self._stop.wait(due - now):
                            break
                    elif now - due > self.LATE_RESYNC_S:
                        clock = (now, frame.time_s)
                    elif now - due > 1.5 / max(src.fps or 25.0, 1.0) and not self._paused:
                        continue  # behind real time: skip this frame, the next one is due sooner
                self.rate.tick()
                if generation == self._generation:
                    self.slot.put(Captured(frame, time.monotonic(), generation))
        except DanFerError as exc:
            self._end(SourceEnd(self._generation, lost=bool(src.is_live), error=str(exc)))
        except Exception as exc:  # a decoder crash must reach the user, not vanish with the thread
            log.exception("capture failed")
            self._end(SourceEnd(self._generation, lost=bool(src.is_live), error=f"{type(exc).__name__}: {exc}"))

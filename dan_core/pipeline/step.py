"""One per-frame step for every front end: each classified frame goes through a list of outputs, in order.

The live view (``live.LiveAnalysis``), ``dan-fer analyze``, ``batch`` and ``bench`` classify
frames their own way (a live handoff; ``Pipeline.stream`` through ``run_stream``), then hand each
one, as an ``AnalysedFrame``, to a ``FrameStep``: the outputs that front end chose, each a small
object with ``frame(item)`` and ``close()`` (``FrameOutput``). The order is the order of the list:
record, stream, draw, then what writes the drawing (``outputs``). A new per-frame output is one
class with those two methods, and one line in the list of each front end that runs it; the front
end closes the step when its run ends (``with FrameStep([...]) as step:``), however it ends.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from dan_core.errors import DanFerError
from dan_core.pipeline.core import FrameResult, Pipeline


@dataclass
class AnalysedFrame:
    """One classified frame on its way through the outputs."""

    image: np.ndarray  # the frame as read (BGR)
    result: FrameResult
    moment: float  # time.monotonic() when it left its source: the LSL samples' stamp, where markers made at a moment land
    annotated: np.ndarray | None = None  # the picture the drawing output made, for the outputs after it (the video)


class FrameOutput(Protocol):
    def frame(self, item: AnalysedFrame) -> None:
        """Take one classified frame; DanFerError when this output cannot go on (a full disk ...)."""

    def close(self) -> None:
        """Finish what the output opened itself (what it was handed is closed by whoever made it)."""


class FrameStep:
    """The outputs a front end runs on every classified frame, in order.

    Without ``on_failure`` an output's DanFerError ends the step (``analyze`` and ``batch`` stop and say
    why). With it, the failing output is taken out and ``on_failure(output, error)`` decides what else
    stops (the app: a CSV that cannot be written stops the recording, a video only itself); the outputs
    after it still get the frame.
    """

    def __init__(self, outputs: Iterable[FrameOutput | None] = (), *,
                 on_failure: Callable[[FrameOutput, DanFerError], None] | None = None) -> None:
        self.outputs: list[FrameOutput] = []
        self._on_failure = on_failure
        self.use(outputs)

    def use(self, outputs: Iterable[FrameOutput | None]) -> None:
        """Run these outputs from now on (None: one this run does not have); also from inside ``on_failure``."""
        self.outputs[:] = [o for o in outputs if o is not None]

    def frame(self, item: AnalysedFrame) -> None:
        for output in list(self.outputs):
            if not any(o is output for o in self.outputs):
                continue  # taken out earlier in this frame (a recording that stopped)
            try:
                output.frame(item)
            except DanFerError as exc:
                if self._on_failure is None:
                    raise
                self.outputs[:] = [o for o in self.outputs if o is not output]
                self._on_failure(output, exc)

    def __enter__(self) -> FrameStep:
        return self

    def __exit__(self, kind, error, tb) -> None:
        """Close the outputs however the run ends; when it ends with an error, that error is the one told."""
        if error is None:
            self.close()
            return
        try:
            self.close()
        except DanFerError:
            pass

    def close(self) -> None:
        """Close every output; the first DanFerError is raised once all are closed."""
        errors: list[DanFerError] = []
        for output in self.outputs:
            try:
                output.close()
            except DanFerError as exc:
                errors.append(exc)
        if errors:
            raise errors[0]


def run_stream(pipeline: Pipeline, frames: Iterable, step: FrameStep, *, overlap: bool = True, independent: bool = False,
               stop: Callable[[], bool] = lambda: False) -> None:
    """Classify ``frames`` in order (``Pipeline.stream``: nothing dropped) and hand each to ``step``, until the frames
    end or ``stop()`` is true after a frame (Ctrl+C between frames)."""
    frames, seen_at = stamped(frames)
    for frame, result in pipeline.stream(frames, overlap=overlap, independent=independent):
        step.frame(AnalysedFrame(frame.image_bgr, result, seen_at.pop(result.index, time.monotonic())))
        if stop():
            break


def stamped(frames: Iterable) -> tuple[Iterator, dict[int, float]]:
    """Frames as they are read, plus a dict index -> ``time.monotonic()`` of the moment each was read."""
    seen_at: dict[int, float] = {}

    def gen() -> Iterator:
        for frame in frames:
            seen_at[frame.index] = time.monotonic()
            yield frame

    return gen(), seen_at

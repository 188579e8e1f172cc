"""The per-frame outputs the front ends share (``step.FrameOutput``): record, stream, draw, write the drawing, count.

Which front end runs which, in this order (a front end's own outputs live in its module):

    app (live.LiveAnalysis)  TimelineRows [1]  LslStream      render.LiveView  AnnotatedVideo [2]
    analyze                  TimelineRows      LslStream [3]  Annotate [4]     AnnotatedVideo [4]  RunTotals  ProgressBar
    batch                    TimelineRows                                                          RunTotals  Progress
    bench                    Measure, Timed(LslStream) [3]

    [1] while recording  [2] while recording with video  [3] with --lsl or --lsl-markers  [4] with --annotated
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Sequence

from dan_core.pipeline.draw import draw_results
from dan_core.pipeline.recorder import Recorder
from dan_core.pipeline.render import RenderOptions
from dan_core.pipeline.step import AnalysedFrame
from dan_core.pipeline.study import StudyLinks


class RecorderOutput:
    """An output that writes into a run's ``recorder.Recorder``, which whoever opened it closes (with the run's totals)."""

    def __init__(self, recorder: Recorder) -> None:
        self.recorder = recorder

    def close(self) -> None:
        pass


class TimelineRows(RecorderOutput):
    """Record: one timeline CSV row per face."""

    def frame(self, item: AnalysedFrame) -> None:
        self.recorder.write(item.result)


class LslStream:
    """Stream: each face's probabilities to the LSL outlet, and the frame's moment to the recording's markers."""

    def __init__(self, study: StudyLinks) -> None:
        self.study = study

    def frame(self, item: AnalysedFrame) -> None:
        self.study.frame(item.result, item.moment)

    def close(self) -> None:
        pass


class Annotate:
    """Draw: the frame with its results (heatmaps, boxes, labels, probability bars) into ``item.annotated``."""

    def __init__(self, class_names: Sequence[str], options: RenderOptions) -> None:
        self.class_names, self.options = tuple(class_names), options

    def frame(self, item: AnalysedFrame) -> None:
        o = self.options
        item.annotated = draw_results(item.image, item.result, self.class_names, heatmap=o.heatmap, opacity=o.opacity,
                                      landmarks=o.landmarks)

    def close(self) -> None:
        pass


class AnnotatedVideo(RecorderOutput):
    """Write the drawing: ``item.annotated``, made by the drawing output before it, to the recorder's video (or image)."""

    def frame(self, item: AnalysedFrame) -> None:
        if item.annotated is not None:
            self.recorder.write_image(item.annotated)


class RunTotals:
    """Count: frames, frames with a face, and per face its frames' dominant classes and first and last time."""

    def __init__(self) -> None:
        self.frames = self.with_faces = 0
        self.last_time_s = 0.0
        self.dominant: defaultdict[int, Counter] = defaultdict(Counter)
        self.first: dict[int, float] = {}
        self.last: dict[int, float] = {}

    def frame(self, item: AnalysedFrame) -> None:
        result = item.result
        self.frames += 1
        self.with_faces += bool(result.faces)
        self.last_time_s = result.time_s
        for f in result.faces:
            self.dominant[f.face_id][f.dominant] += 1
            self.first.setdefault(f.face_id, result.time_s)
            self.last[f.face_id] = result.time_s

    def per_face(self, class_names: Sequence[str]) -> dict[str, dict]:
        """For the summary: per face, its frames, first and last time and the share of each dominant class."""
        out = {}
        for fid, counts in sorted(self.dominant.items()):
            n = sum(counts.values())
            out[str(fid)] = {"frames": n, "first_s": round(self.first[fid], 3), "last_s": round(self.last[fid], 3),
                             "dominant_share": {c: round(counts[c] / n, 4) for c in class_names if counts[c]}}
        return out

    def close(self) -> None:
        pass


class Progress:
    """Tell ``advance(n)`` every ``every`` frames how many more were done, and the rest on ``close``."""

    def __init__(self, advance: Callable[[int], object], *, every: int = 1) -> None:
        self.advance, self.every = advance, every
        self._pending = 0

    def frame(self, item: AnalysedFrame) -> None:
        self._pending += 1
        if self._pending >= self.every:
            self.advance(self._pending)
            self._pending = 0

    def close(self) -> None:
        self.advance(self._pending)
        self._pending = 0

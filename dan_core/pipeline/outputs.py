"""The per-frame outputs the front ends share (``step.FrameOutput``): record, stream, draw, write the drawing, count.

Which front end runs which, in this order (a front end's own outputs live in its module):

    app (live.LiveAnalysis)  TimelineRows [1]  FrameAccount [1]  LslStream      render.LiveView  AnnotatedVideo [2]
    analyze                  TimelineRows      FrameAccount      LslStream [3]  Annotate [4]     AnnotatedVideo [4]  RunTotals  ProgressBar
    batch                    TimelineRows      FrameAccount                                                          RunTotals  Progress
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


class FrameAccount:
    """Count: every frame accounted for. Processed frames, and the frames of the source between them that were not
    processed: skipped by ``--every``, or dropped (a live view keeps up by dropping frames), with the longest run of
    dropped frames. Frame numbers are the source's; ``jumped()`` says the next frame follows a seek (a new span)."""

    def __init__(self, *, every: int = 1, fps: float = 0.0) -> None:
        self.every, self.fps = max(int(every), 1), float(fps or 0.0)
        self.processed = self.dropped = self.seeks = self.spanned = 0
        self.longest_gap = 0  # frames in the longest run of dropped frames
        self.longest_gap_at: float | None = None  # media time (s) of the frame after that run
        self.frame_size: tuple[int, int] | None = None
        self._first: int | None = None  # first frame of the current span
        self._last: int | None = None
        self._jumped = False

    def jumped(self) -> None:
        self._jumped = True

    def frame(self, item: AnalysedFrame) -> None:
        r = item.result
        self.frame_size = self.frame_size or tuple(r.frame_size)
        self.processed += 1
        if self._last is None or self._jumped or r.index <= self._last:
            self.seeks += self._last is not None
            self._close_span()
            self._first, self._jumped = r.index, False
        else:
            gap = r.index - self._last - 1
            skipped = min(gap, self.every - 1)  # --every's, between two processed frames
            self.dropped += gap - skipped
            if gap - skipped > self.longest_gap:
                self.longest_gap, self.longest_gap_at = gap - skipped, r.time_s
        self._last = r.index

    def _close_span(self) -> None:
        if self._first is not None and self._last is not None:
            self.spanned += self._last - self._first + 1

    def totals(self, *, read: int | None = None, rows: int | None = None) -> dict:
        """For the sidecar: frames read from the source (``read``: counted where they were read; else the frames spanned
        by the processed ones), processed, skipped by --every, dropped, the longest run dropped, seeks, rows."""
        spanned = self.spanned + (self._last - self._first + 1 if self._first is not None and self._last is not None else 0)
        read = spanned if read is None else read
        gap_s = round(self.longest_gap / self.fps, 3) if self.fps > 0 else None
        return {"read": int(read), "processed": self.processed, "skipped_every": int(read - self.processed - self.dropped),
                "dropped": self.dropped, "longest_gap_frames": self.longest_gap, "longest_gap_s": gap_s,
                "longest_gap_at_s": None if self.longest_gap_at is None else round(self.longest_gap_at, 3),
                "seeks": self.seeks, **({"rows": int(rows)} if rows is not None else {})}

    def close(self) -> None:
        pass


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

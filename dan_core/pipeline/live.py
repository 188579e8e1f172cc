"""Live analysis for a viewer: each frame goes in once and comes out once, finished (no Qt).

The path of one frame: ``playback.Capture`` reads it from its source, paced to real time, into
``LiveAnalysis.frames``; the detect thread runs ``Pipeline.detect`` (landmarks, aligned crops) at
most one frame ahead; ``LiveAnalysis.take``, on the viewer's worker thread, classifies it
(``Pipeline.classify``), writes it to the recording (``recorder.Recorder``), draws what the viewer
shows (``render.Renderer``) and returns it as one ``Shown``. Between the stages the newest frame
wins (``handoff.LatestSlot``): a slow machine shows fewer frames, never older ones. Markers put
into ``frames`` (e.g. ``playback.SourceEnd``) come out of ``take`` in order, after the frame
before them.

MediaPipe (landmarks of frame n+1) and ONNX Runtime (DAN on frame n) both release the GIL, so the
two stages overlap on two cores instead of adding up.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field

from dan_core.errors import DanFerError
from dan_core.pipeline.core import Detections, FrameResult, Pipeline
from dan_core.pipeline.handoff import LatestSlot, RateMeter
from dan_core.pipeline.playback import Captured
from dan_core.pipeline.recorder import Recorder
from dan_core.pipeline.render import Rendered, Renderer, RenderOptions
from dan_core.pipeline.study import StudyLinks

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Detected:
    """A frame after the detect stage, waiting for classification."""

    captured: Captured
    detections: Detections | None  # None while no model is loaded
    epoch: int  # which pipeline produced it: detections of a replaced pipeline are dropped


@dataclass(frozen=True)
class DetectFailed:
    """The detect stage failed on a frame; it goes on with the next one."""

    captured: Captured
    message: str


@dataclass
class Shown:
    """One analysed frame (or a redraw of the last one), as the viewer shows it."""

    captured: Captured
    result: FrameResult | None  # None while no model is loaded
    view: Rendered
    timings: dict[str, float] = field(default_factory=dict)  # ms per stage, the pipeline's and classify_app, draw_app
    record_error: str | None = None  # the CSV could not be written: the viewer should stop the recording
    video_error: str | None = None  # the annotated video could not be written: it stopped, the CSV goes on


class LiveAnalysis:
    """The detect thread and the classify-record-draw step of a live view.

    ``start``/``stop`` run the detect thread; ``set_pipeline`` swaps the model (a frame detected
    by the old one is dropped); ``recorder`` is the running recording or None. ``take`` and
    ``redraw`` are called from one worker thread, the viewer's.
    """

    def __init__(self) -> None:
        self.frames: LatestSlot[object] = LatestSlot()  # Captured frames and markers, from playback
        self._detected: LatestSlot[object] = LatestSlot()  # Detected, DetectFailed and markers
        self._lock = threading.Lock()  # held while detecting and while replacing the pipeline
        self._pipeline: Pipeline | None = None
        self._epoch = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._detect_loop, name="dan-fer-detect", daemon=True)
        self.renderer = Renderer()
        self.recorder: Recorder | None = None
        self.study = StudyLinks()  # markers of the recording; LSL outlets and marker listener when asked for
        self.processed = RateMeter()
        self._last: tuple[Captured, FrameResult | None] | None = None  # the frame redraw() draws again
        self._last_captured: Captured | None = None  # the newest frame seen, analysed again after a model change
        self._last_generation = -1

    @property
    def pipeline(self) -> Pipeline | None:
        return self._pipeline

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def set_pipeline(self, pipeline: Pipeline | None) -> Pipeline | None:
        """Use ``pipeline`` from the next frame on; returns the one it replaces (the caller closes it)."""
        with self._lock:
            old, self._pipeline = self._pipeline, pipeline
            self._epoch += 1
        self._last = None
        return old

    def analyse_last_again(self) -> None:
        """Analyse the newest frame again (a still or a paused frame, after the model changed)."""
        if self._last_captured is not None:
            self.frames.put(self._last_captured)

    def clear(self, *, forget: bool = False) -> None:
        """Drop frames in flight (the source closed); ``forget`` also the last frame (a new source opens)."""
        self.frames.clear()
        self._detected.clear()
        if forget:
            self._last = self._last_captured = None

    # --- the detect thread
    def _detect_loop(self) -> None:
        """Newest frame -> landmarks and aligned crops, at most one frame ahead of ``take``.

        It waits until its last result was taken, then takes the newest frame, so no detection is
        thrown away unused (CPU matters on 2 cores).
        """
        while not self._stop.is_set():
            if not self._detected.wait_empty(0.05):
                continue
            item = self.frames.take(timeout=0.05)
            if item is None:
                continue
            if not isinstance(item, Captured):  # a marker: after the frame before it
                while not self._detected.wait_empty(0.1) and not self._stop.is_set():
                    pass
                self._detected.put(item)
                continue
            try:
                with self._lock:
                    pipe, epoch = self._pipeline, self._epoch
                    frame = item.frame
                    det = pipe.detect(frame.image_bgr, frame.time_s, index=frame.index) if pipe is not None else None
                self._detected.put(Detected(item, det, epoch))
            except Exception as exc:  # reported through take(); the stage keeps running
                log.exception("face detection failed")
                self._detected.put(DetectFailed(item, f"face detection failed: {type(exc).__name__}: {exc}"))
                self._stop.wait(0.2)

    # --- the viewer's worker thread
    def take(self, options: RenderOptions, *, generation: int | None, timeout: float = 0.02) -> object | None:
        """The next finished frame (``Shown``), ``DetectFailed``, or marker; None when there is none yet.

        Frames of another ``generation`` than the playing one (before a seek, of a closed source) are dropped.
        """
        item = self._detected.take(timeout=timeout)
        if not isinstance(item, Detected):
            return item
        if generation is None or item.captured.generation != generation:
            return None
        return self._finish(item, options)

    def _finish(self, detected: Detected, options: RenderOptions) -> Shown | None:
        captured = detected.captured
        self._last_captured = captured
        if detected.epoch != self._epoch:
            return None  # detected by a pipeline that has since been replaced
        result, record_error = None, None
        pipeline = self._pipeline
        if pipeline is not None and detected.detections is not None:
            if captured.generation != self._last_generation:
                pipeline.reset()  # after a seek or a new source: fresh tracks, no smoothing across the jump
                self._last_generation = captured.generation
            t0 = time.perf_counter()
            result = pipeline.classify(detected.detections)  # carries the frame's own time and index
            result.timings["classify_app"] = (time.perf_counter() - t0) * 1000.0
            self.processed.tick()
            if self.recorder is not None:
                try:
                    self.recorder.write(result)
                except DanFerError as exc:
                    record_error = str(exc)
            self.study.frame(result, captured.captured_at)
        self._last = (captured, result)
        shown = self._show(captured, result, options, fresh=True, record=record_error is None)
        shown.record_error = record_error
        return shown

    def redraw(self, options: RenderOptions) -> Shown | None:
        """The last frame drawn again with new options (paused, or a still); None before the first frame."""
        if self._last is None:
            return None
        return self._show(*self._last, options, fresh=False, record=False)

    def _show(self, captured: Captured, result: FrameResult | None, options: RenderOptions, *, fresh: bool,
              record: bool) -> Shown:
        pipeline = self._pipeline
        class_names = tuple(pipeline.class_names) if pipeline is not None else None
        view = self.renderer.render(captured.frame.image_bgr, result, class_names, options, fresh=fresh)
        shown = Shown(captured, result, view, dict(result.timings) if result is not None else {})
        shown.timings["draw_app"] = view.draw_ms
        if record and self.recorder is not None and self.recorder.video is not None:
            try:
                self.recorder.write_image(view.image)
            except DanFerError as exc:
                shown.video_error = str(exc)
        return shown

"""Live analysis for a viewer: each frame goes in once and comes out once, finished (no Qt).

The path of one frame: ``playback.Capture`` reads it from its source, paced to real time, into
``LiveAnalysis.frames``; the detect thread runs ``Pipeline.detect`` (landmarks, aligned crops) at
most one frame ahead; ``LiveAnalysis.take``, on the viewer's worker thread, classifies it
(``Pipeline.classify``) and runs the per-frame step (``step.FrameStep``): the recording's rows
(``outputs.TimelineRows``, while recording), the study's streams (``outputs.LslStream``), the
viewer's picture (``LiveView``), the recording's video (``outputs.AnnotatedVideo``). ``take``
returns one ``LiveUpdate``: the frame as the viewer shows it (``Shown``), or the end of the source
or a failed detection, and whatever stopped on the way (a recording whose disk is full).
Between the stages the newest frame wins (``handoff.LatestSlot``): a slow machine shows fewer
frames, never older ones. A ``playback.SourceEnd`` put into ``frames`` comes out of ``take``
after the frame before it.

The live analysis owns what changes in it: the model (``set_pipeline``), the recording
(``start_recording`` / ``stop_recording``; it stops by itself when its CSV cannot be written), the
study links (``enable_study``, ``add_marker``); the viewer only calls these methods.

MediaPipe (landmarks of frame n+1) and ONNX Runtime (DAN on frame n) both release the GIL, so the
two stages overlap on two cores instead of adding up.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from dan_core.errors import DanFerError
from dan_core.pipeline.core import Detections, FrameResult, Pipeline
from dan_core.pipeline.handoff import LatestSlot, RateMeter
from dan_core.pipeline.outputs import AnnotatedVideo, FrameAccount, LslStream, TimelineRows
from dan_core.pipeline.playback import Captured, SourceEnd
from dan_core.pipeline.recorder import Recorder
from dan_core.pipeline.render import LiveView, Rendered, RenderOptions
from dan_core.pipeline.step import AnalysedFrame, FrameOutput, FrameStep
from dan_core.pipeline.study import StudyLinks, StudyOptions

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


@dataclass(frozen=True)
class RecordingEnd:
    """A recording that ended: its files, the whole rows its CSV keeps, and what went wrong."""

    path: Path
    video_path: Path | None
    rows: int  # whole rows on disk
    failed: bool  # a file could not be written or finished: the recording must not be called saved
    problems: tuple[str, ...] = ()  # what could not be finished (the markers, the end of a file)
    cause: str | None = None  # why it stopped by itself (its CSV could not be written); None when it was stopped
    frames: dict | None = None  # outputs.FrameAccount.totals: read, processed, dropped, the longest gap


@dataclass
class LiveUpdate:
    """What ``take`` hands the viewer: at most one of a finished frame, the end of the source or a failed
    detection, plus what stopped while the frame went through the per-frame step."""

    shown: Shown | None = None
    source_end: SourceEnd | None = None
    detect_error: str | None = None
    recording_stopped: RecordingEnd | None = None  # its CSV could not be written: the recording stopped
    video_stopped: str | None = None  # the annotated video could not be written: it stopped, the CSV goes on
    output_errors: list[str] = field(default_factory=list)  # another per-frame output failed and stopped

    @property
    def empty(self) -> bool:
        return (self.shown is None and self.source_end is None and self.detect_error is None
                and self.recording_stopped is None and self.video_stopped is None and not self.output_errors)


class LiveAnalysis:
    """The detect thread and the per-frame step of a live view.

    ``start``/``stop`` run the detect thread; ``set_pipeline`` swaps the model (a frame detected
    by the old one is dropped). ``take``, ``redraw`` and every method that changes the recording or
    the study are called from one worker thread, the viewer's.
    """

    def __init__(self) -> None:
        self.frames: LatestSlot[Captured | SourceEnd] = LatestSlot()  # from playback
        self._detected: LatestSlot[Detected | DetectFailed | SourceEnd] = LatestSlot()
        self._lock = threading.Lock()  # held while detecting and while replacing the pipeline
        self._pipeline: Pipeline | None = None
        self._epoch = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._detect_loop, name="dan-fer-detect", daemon=True)
        self._view = LiveView()
        self._study = StudyLinks()  # markers of the recording; LSL outlets and marker listener when asked for
        self._fps = 0.0  # the source's frame rate: the LSL outlet's nominal rate
        self._recorder: Recorder | None = None
        self._rows: TimelineRows | None = None
        self._account: FrameAccount | None = None  # the recording's frame accounting
        self._new_source = True  # the next frame starts new tracks (else a change of generation is a seek)
        self._video: AnnotatedVideo | None = None
        self._step = FrameStep(on_failure=self._on_output_failed)
        self._update = LiveUpdate()  # the one take() is building
        self.processed = RateMeter()
        self._last: tuple[Captured, FrameResult | None] | None = None  # the frame redraw() draws again
        self._last_captured: Captured | None = None  # the newest frame seen, analysed again after a model change
        self._last_generation = -1
        self._use_outputs()

    def _use_outputs(self) -> None:
        """The per-frame step of the live view: record (while recording), stream, draw, write the drawing (with video)."""
        rec = self._recorder
        self._rows = TimelineRows(rec) if rec is not None else None
        self._video = AnnotatedVideo(rec) if rec is not None and rec.video is not None else None
        self._step.use([self._rows, self._account, LslStream(self._study), self._view, self._video])

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
        self._view.class_names = tuple(pipeline.class_names) if pipeline is not None else None
        if pipeline is not None:
            self._study.set_classes(pipeline.class_names, self._fps)
        return old

    def set_source_fps(self, fps: float) -> None:
        """A source opened at this frame rate (the LSL outlet's nominal rate)."""
        self._fps = fps
        if self._pipeline is not None:
            self._study.set_classes(self._pipeline.class_names, fps)

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
            self._new_source = True

    def close(self) -> None:
        """The per-frame step's outputs, the study links and the pipeline (after ``stop`` and ``stop_recording``)."""
        try:
            self._step.close()
        except DanFerError as exc:
            log.error("%s", exc)
        self._study.close()
        pipeline = self.set_pipeline(None)
        if pipeline is not None:
            try:
                pipeline.close()
            except Exception:
                log.exception("closing the pipeline failed")

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
            if not isinstance(item, Captured):  # the source's end: after the frame before it
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
    def take(self, options: RenderOptions, *, generation: int | None, timeout: float = 0.02) -> LiveUpdate:
        """The next finished frame, or what came instead; empty when nothing came within ``timeout``.

        Frames of another ``generation`` than the playing one (before a seek, of a closed source) are dropped.
        """
        update = self._update = LiveUpdate()
        item = self._detected.take(timeout=timeout)
        if isinstance(item, SourceEnd):
            update.source_end = item
        elif isinstance(item, DetectFailed):
            update.detect_error = item.message
        elif isinstance(item, Detected) and generation is not None and item.captured.generation == generation:
            update.shown = self._finish(item, options)
        return update

    def _finish(self, detected: Detected, options: RenderOptions) -> Shown | None:
        captured = detected.captured
        self._last_captured = captured
        if detected.epoch != self._epoch:
            return None  # detected by a pipeline that has since been replaced
        self._view.options = options
        image, result, pipeline = captured.frame.image_bgr, None, self._pipeline
        if pipeline is not None and detected.detections is not None:
            if captured.generation != self._last_generation:
                self._jumped(pipeline)
                self._last_generation = captured.generation
            t0 = time.perf_counter()
            result = pipeline.classify(detected.detections)  # carries the frame's own time and index
            result.timings["classify_app"] = (time.perf_counter() - t0) * 1000.0
            self.processed.tick()
            self._view.rendered = None
            self._step.frame(AnalysedFrame(image, result, captured.captured_at))
        view = self._view.rendered if result is not None and self._view.rendered is not None else \
            self._view.render(image, result, fresh=True)
        self._last = (captured, result)
        return Shown(captured, result, view, {**(result.timings if result is not None else {}), "draw_app": view.draw_ms})

    def _jumped(self, pipeline: Pipeline) -> None:
        """The frame follows a new source (fresh tracks) or a seek (the nearest tracks keep their IDs: a replayed person
        stays #1); no smoothing across either; the recording counts a seek, not dropped frames."""
        if self._new_source:
            pipeline.reset()
            self._new_source = False
        else:
            pipeline.jump()
        if self._account is not None:
            self._account.jumped()

    def redraw(self, options: RenderOptions) -> Shown | None:
        """The last frame drawn again with new options (paused, or a still); None before the first frame."""
        if self._last is None:
            return None
        captured, result = self._last
        self._view.options = options
        view = self._view.render(captured.frame.image_bgr, result, fresh=False)
        return Shown(captured, result, view, {**(result.timings if result is not None else {}), "draw_app": view.draw_ms})

    def _on_output_failed(self, output: FrameOutput, error: DanFerError) -> None:
        if output is self._rows:  # the CSV: the whole recording stops, and is never called saved
            self._update.recording_stopped = self.stop_recording(cause=str(error))
        elif output is self._video:  # the annotated video: it stops, the CSV goes on
            self._drop_video()
            self._update.video_stopped = str(error)
        else:
            self._update.output_errors.append(str(error))

    # --- the recording and the study (the viewer's worker thread)
    @property
    def recording_rows(self) -> int | None:
        """Rows the running recording has accepted so far; None when nothing is recorded."""
        return self._recorder.rows if self._recorder is not None else None

    def start_recording(self, csv_path: str | os.PathLike, *, video_path: str | os.PathLike | None = None, force: bool = False,
                        source: dict | None = None) -> None:
        """Record from the next frame on: the timeline CSV (+ the sidecar ``dan-fer analyze`` writes: ``provenance``), the
        markers' events file and, with ``video_path``, the annotated video. ``source``: what the sidecar says of the source
        (``source``, ``source_fps``, ``source_frames``, ``live``). DanFerError (nothing left open) when no model is loaded
        or a file cannot be made."""
        from dan_core.pipeline.provenance import run_record

        pipeline = self._pipeline
        if pipeline is None:
            raise DanFerError("cannot record: no model is loaded (choose one in Settings)")
        self.stop_recording()
        src = {"source": None, "source_fps": None, "source_frames": None, "live": False, **(source or {})}
        fps = float(src["source_fps"] or 0.0)
        recorder = Recorder(csv_path, pipeline.class_names, meta=run_record(pipeline, **src, made_by="dan-fer app"), force=force,
                            video_path=video_path, fps=fps if fps > 0 else 25.0, blendshapes=pipeline.config.blendshapes)
        try:
            self._study.start_recording(recorder.path, force=force)  # <csv>.events.csv, created at the first marker
        except DanFerError:
            recorder.close()
            raise
        self._recorder, self._account = recorder, FrameAccount(fps=fps)
        self._use_outputs()

    def stop_recording(self, *, cause: str | None = None) -> RecordingEnd | None:
        """Finish the recording's files; what happened to them (None when nothing was recorded)."""
        recorder, self._recorder = self._recorder, None
        if recorder is None:
            return None
        account, self._account = self._account, None
        self._use_outputs()
        problems, failed = [], cause is not None
        try:
            events = self._study.stop_recording()
        except DanFerError as exc:  # the markers placed so far stay on disk
            events = None
            problems.append(f"the markers could not be finished: {exc}")
        frames = account.totals(rows=recorder.rows) if account is not None else None
        size = account.frame_size if account is not None else None
        try:
            recorder.close(**({"events": events} if events else {}), frames=frames, source_size=list(size) if size else None)
        except DanFerError as exc:  # e.g. the disk filled up at the very end
            failed = True
            problems.append(f"the recording could not be finished: {exc}")
        return RecordingEnd(Path(recorder.path), recorder.video_path, int(recorder.rows_written), failed, tuple(problems), cause,
                            frames)

    def _drop_video(self) -> None:
        if self._recorder is not None:
            try:
                self._recorder.drop_video()
            except DanFerError:
                pass  # the same failure, already reported
        self._use_outputs()

    def enable_study(self, options: StudyOptions) -> None:
        """The study parts ``options`` ask for (LSL outlets, marker sources); a running recording keeps its events file."""
        old, self._study = self._study, StudyLinks(options)
        self._study.adopt_recording(old)
        old.close()
        self._use_outputs()
        if self._pipeline is not None:
            self._study.set_classes(self._pipeline.class_names, self._fps)

    def add_marker(self, label: str, time_s: float, frame: int | None, *, source: str) -> None:
        """A marker at the frame shown; written at once. DanFerError when nothing is recorded."""
        self._study.marker_at_frame(label, time_s, frame, source=source)

    def new_markers(self) -> list:
        """The markers written since the last call (of every source), for the viewer to draw."""
        return self._study.new_events()

    def save_snapshot(self, path: Path) -> bool | None:
        """The last picture shown, as a PNG: whether it was written; None when nothing was shown yet."""
        if self._view.renderer.last_image is None:
            return None
        return self._view.renderer.save_snapshot(path)

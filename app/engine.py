"""The engine: the detect/classify loop off the UI thread, and the requests that steer it.

Three threads per running source, one stage each:

* capture (``app.capture``) reads frames into a single-slot handoff: the newest frame wins;
* detect (``Engine._detect_loop``) runs landmarks and alignment on the newest frame, at most one
  frame ahead of classification;
* the engine thread (``Engine.run``, a QThread) classifies, records (``app.recording``), renders
  (``app.render``) and hands a ``Packet`` to the UI through ``Signal(object)``.

Requests from the UI (open a source, change settings, record, snapshot) are queued commands the
engine thread executes between frames; stopping is cooperative (``threading.Event``). Every
exception is caught in the worker and reported through ``failed``; nothing is lost silently.
"""

from __future__ import annotations

import dataclasses
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal, Slot

import app._compat  # noqa: F401  (first: PySide6 6.12 on Python 3.11, see app/_compat.py)
from app.capture import Capture, Captured, SourceEnd
from app.messages import AppError, Packet, PipelineInfo, RenderOptions, SourceInfo, pipeline_error_kind
from app.recording import Recording
from app.render import Renderer
from app.state import LatestSlot, RateMeter
from dan_core.errors import DanFerError
from dan_core.pipeline import Detections, FrameResult, Pipeline, PipelineConfig, sources
from dan_core.pipeline.sources import FrameSource, source_mode

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Detected:
    """A frame after the detect stage (landmarks + aligned crops), waiting for classification."""

    captured: Captured
    detections: Detections | None  # None while no model is loaded
    epoch: int  # which pipeline produced it: detections of a replaced pipeline are dropped


@dataclass(frozen=True)
class DetectFailed:
    captured: Captured
    message: str


class Engine(QObject):
    """The worker. Public methods are thread-safe requests; ``run`` is the thread's loop."""

    frame_ready = Signal(object)  # Packet
    failed = Signal(object)  # AppError
    info = Signal(str)  # a transient message for the status bar
    source_opened = Signal(object)  # SourceInfo
    source_ended = Signal(object)  # SourceInfo (a file reached its end)
    pipeline_ready = Signal(object)  # PipelineInfo
    recording_changed = Signal(object)  # RecordingInfo
    snapshot_saved = Signal(object)  # Path
    stopped = Signal()

    def __init__(
        self,
        *,
        open_source: Callable[[str], FrameSource] = sources.open_source,
        make_pipeline: Callable[[PipelineConfig], Pipeline] = Pipeline,
    ) -> None:
        super().__init__()
        self._open_source = open_source
        self._make_pipeline = make_pipeline
        self._commands: queue.SimpleQueue[tuple[Callable[..., None], tuple]] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._frames: LatestSlot[Captured | SourceEnd] = LatestSlot()  # capture -> detect stage
        self._detected: LatestSlot[Detected | DetectFailed | SourceEnd] = LatestSlot()  # detect -> classify, record, render
        self._pipe_lock = threading.Lock()  # held while detecting and while replacing the pipeline
        self._epoch = 0
        self._source_count = 0
        self.out: LatestSlot[Packet] = LatestSlot()  # the UI pulls the newest packet from here
        self._options = RenderOptions()
        self._options_lock = threading.Lock()
        self._rerender = threading.Event()
        self._capture: Capture | None = None
        self._source_info: SourceInfo | None = None
        self._pipeline: Pipeline | None = None
        self._config: PipelineConfig | None = None
        self._processed = RateMeter()
        self._seq = 0
        self._last: tuple[Captured, FrameResult | None] | None = None  # for re-rendering when paused / still
        self._last_generation = -1
        self._last_captured: Captured | None = None  # the newest frame seen, analysed again after a model change
        self._renderer = Renderer()
        self._recording = Recording(failed=self.failed.emit, changed=self.recording_changed.emit)

    # --- requests (any thread)
    def _request(self, fn: Callable[..., None], *args: Any) -> None:
        self._commands.put((fn, args))  # executed within ~20 ms by the engine loop

    def configure(self, config: PipelineConfig) -> None:
        """Build (or rebuild) the pipeline; its landmarker mode follows the open source."""
        self._request(self._do_configure, config)

    def open_source(self, spec: str) -> None:
        self._request(self._do_open_source, str(spec))

    def close_source(self) -> None:
        self._request(self._do_close_source)

    def set_paused(self, paused: bool) -> None:
        capture = self._capture  # one read: the engine thread may replace it meanwhile
        if capture is not None:
            capture.set_paused(paused)

    def seek(self, time_s: float) -> None:
        capture = self._capture
        if capture is not None:
            capture.seek(time_s)

    def set_options(self, **changes: Any) -> None:
        """Change how frames are drawn (heatmap, opacity, landmarks, selected_id); redraws a paused frame."""
        with self._options_lock:
            self._options = dataclasses.replace(self._options, **changes)
        self._rerender.set()

    def options(self) -> RenderOptions:
        with self._options_lock:
            return dataclasses.replace(self._options)

    def start_recording(self, csv_path: Path, *, video_path: Path | None = None, force: bool = False) -> None:
        self._request(self._do_start_recording, Path(csv_path), video_path, force)

    def stop_recording(self) -> None:
        self._request(self._recording.stop, "")

    def snapshot(self, path: Path) -> None:
        self._request(self._do_snapshot, Path(path))

    def stop(self) -> None:
        """Cooperative stop: the loop finishes its current frame, closes the recording and returns."""
        self._stop.set()
        capture = self._capture
        if capture is not None:
            capture.set_paused(False)

    @property
    def is_running(self) -> bool:
        return not self._stop.is_set()

    # --- the loop (engine thread)
    @Slot()
    def run(self) -> None:
        """Classify, record, draw and publish; the detect stage runs on a thread of its own.

        MediaPipe (landmarks of frame n+1) and ONNX Runtime (DAN on frame n) both release the GIL,
        so the two stages overlap on two cores instead of adding up.
        """
        detector = threading.Thread(target=self._detect_loop, name="dan-fer-detect", daemon=True)
        detector.start()
        try:
            while not self._stop.is_set():
                self._drain_commands()
                item = self._detected.take(timeout=0.02)
                if self._stop.is_set():
                    break
                if item is None:
                    if self._rerender.is_set() and self._last is not None:
                        self._rerender.clear()
                        self._publish(*self._last, fresh=False)
                    continue
                try:
                    if isinstance(item, SourceEnd):
                        if self._capture is not None and item.generation == self._capture.generation:
                            self._on_source_end(item)
                    elif isinstance(item, DetectFailed):
                        self.failed.emit(AppError("internal", item.message))
                    elif self._capture is not None and item.captured.generation == self._capture.generation:
                        self._handle_frame(item)
                except DanFerError as exc:
                    self.failed.emit(AppError("internal", str(exc)))
                except Exception as exc:  # report, keep the loop alive for the next frame
                    log.exception("processing a frame failed")
                    self.failed.emit(AppError("internal", f"processing failed: {type(exc).__name__}: {exc}"))
                    time.sleep(0.2)  # do not spin on a frame that fails every time
        finally:
            self._stop.set()
            detector.join(timeout=5)
            self._shutdown()
            self.stopped.emit()

    def _detect_loop(self) -> None:
        """The detect stage: newest captured frame -> landmarks and aligned crops.

        It runs at most one frame ahead of classification: it waits until its last result was taken,
        then takes the newest frame, so no detection is thrown away unused (CPU matters on 2 cores).
        """
        while not self._stop.is_set():
            if not self._detected.wait_empty(0.05):
                continue
            item = self._frames.take(timeout=0.05)
            if item is None:
                continue
            if isinstance(item, SourceEnd):
                while not self._detected.wait_empty(0.1) and not self._stop.is_set():
                    pass  # let the engine take the last frame first
                self._detected.put(item)
                continue
            try:
                with self._pipe_lock:
                    pipe, epoch = self._pipeline, self._epoch
                    frame = item.frame
                    det = pipe.detect(frame.image_bgr, frame.time_s, index=frame.index) if pipe is not None else None
                self._detected.put(Detected(item, det, epoch))
            except Exception as exc:  # reported by the engine thread; the stage keeps running
                log.exception("face detection failed")
                self._detected.put(DetectFailed(item, f"face detection failed: {type(exc).__name__}: {exc}"))
                self._stop.wait(0.2)

    def _drain_commands(self) -> None:
        while True:
            try:
                fn, args = self._commands.get_nowait()
            except queue.Empty:
                return
            try:
                fn(*args)
            except DanFerError as exc:
                self.failed.emit(AppError("internal", str(exc)))
            except Exception as exc:
                log.exception("engine command failed")
                self.failed.emit(AppError("internal", f"{type(exc).__name__}: {exc}"))

    # --- commands
    def _do_configure(self, config: PipelineConfig) -> None:
        if self._recording.active:
            self._recording.stop("Settings changed.")  # the CSV's columns belong to the old model
        if self._source_info is not None and getattr(config, "mode", None) not in (None, self._source_info.mode):
            config = dataclasses.replace(config, mode=self._source_info.mode)  # stills: IMAGE mode finds small faces too
        with self._pipe_lock:
            old, self._pipeline = self._pipeline, None
            self._epoch += 1
        if old is not None:
            old.close()
        self._last = None
        self._config = config
        try:
            pipeline = self._make_pipeline(config)
        except DanFerError as exc:
            self.failed.emit(AppError(pipeline_error_kind(str(exc)), str(exc)))
            return
        except Exception as exc:  # e.g. an ONNX file that is not a DAN model
            log.exception("building the pipeline failed")
            self.failed.emit(AppError("model", f"could not load the model: {type(exc).__name__}: {exc}"))
            return
        with self._pipe_lock:
            self._pipeline = pipeline
            self._epoch += 1
        if self._last_captured is not None and self._capture is not None:
            self._frames.put(self._last_captured)  # a still (or paused) frame is analysed with the new model
        p = pipeline
        self.pipeline_ready.emit(PipelineInfo(backend=str(p.backend), model_name=str(p.model_name), class_names=tuple(p.class_names),
                                              num_heads=int(p.num_heads), input_size=int(p.input_size),
                                              train_dataset=str(p.meta.get("train_dataset", "") or "")))
        self._rerender.set()

    def _do_open_source(self, spec: str) -> None:
        self._recording.stop("Source changed.")  # one recording, one source (its sidecar names it)
        self._do_close_source()
        camera = spec.isdigit()
        try:
            source = self._open_source(spec)
        except DanFerError as exc:
            self.failed.emit(AppError("camera" if camera else "source", str(exc)))
            return
        except Exception as exc:
            log.exception("opening %s failed", spec)
            self.failed.emit(AppError("camera" if camera else "source", f"cannot open {spec}: {exc}"))
            return
        is_live = bool(getattr(source, "is_live", False))
        fps = float(getattr(source, "fps", 0.0) or 0.0)
        count = getattr(source, "frame_count", None)
        mode = source_mode(source) if isinstance(source, FrameSource) else source_mode(spec)
        still = not is_live and (count == 1 or (mode == "image" and not Path(spec).is_dir()))
        duration = (count / fps) if (count and fps > 0 and not is_live and not still) else None
        name = f"camera {spec}" if camera else Path(spec).name
        self._source_info = SourceInfo(spec, name, is_live, still, fps, duration, mode)
        self.source_opened.emit(self._source_info)
        self._last = self._last_captured = None
        if self._config is not None and getattr(self._config, "mode", mode) != mode:
            self._do_configure(self._config)  # the landmarker's mode follows the source (photo after video)
        self._source_count += 1
        self._capture = Capture(source, self._frames, generation=self._source_count << 32)  # seeks count up from there
        self._capture.start()

    def _do_close_source(self) -> None:
        if self._capture is not None:
            self._capture.stop()
            self._capture = None
        self._frames.clear()
        self._detected.clear()

    def _do_start_recording(self, csv_path: Path, video_path: Path | None, force: bool) -> None:
        p, info = self._pipeline, self._source_info
        meta = {
            "source": info.spec if info else None,
            "backend": str(p.backend) if p else None,
            "model": str(p.model_name) if p else None,
            "fps": info.fps if info else None,
            "recorded_by": "dan-fer app",
        }
        self._recording.start(csv_path, video_path, force=force, class_names=tuple(p.class_names) if p else None, meta=meta,
                              fps=info.fps if info else 25.0)

    def _do_snapshot(self, path: Path) -> None:
        if self._renderer.last_image is None:
            self.info.emit("Nothing to snapshot yet")
        elif self._renderer.save_snapshot(path):
            self.snapshot_saved.emit(path)
        else:
            self.failed.emit(AppError("record", f"could not write the snapshot {path}: check the record folder in Settings"))

    # --- frames
    def _on_source_end(self, end: SourceEnd) -> None:
        info = self._source_info
        if end.error is not None or end.lost:
            self._recording.stop("Source stopped.")
            if end.lost:
                msg = "The camera stopped delivering frames (unplugged or in use by another program)."
                if end.error and "stopped delivering" not in end.error:
                    msg += f" ({end.error})"
                self.failed.emit(AppError("camera_lost", msg))
            else:
                self.failed.emit(AppError("source_failed", f"{info.name if info else 'the source'} ended early: {end.error}"))
            return
        if info is not None and not info.is_still:
            self._recording.stop("End of video.")
            self.source_ended.emit(info)

    def _handle_frame(self, detected: Detected) -> None:
        item = detected.captured
        self._last_captured = item
        result = None
        if detected.epoch != self._epoch:
            return  # detected by a pipeline that has since been replaced
        if self._pipeline is not None and detected.detections is not None:
            if item.generation != self._last_generation:
                self._pipeline.reset()  # after a seek or a new source: fresh tracks, no smoothing across the jump
                self._last_generation = item.generation
            t0 = time.perf_counter()
            result = self._pipeline.classify(detected.detections)  # carries the frame's own time and index
            result.timings["classify_app"] = (time.perf_counter() - t0) * 1000.0
            self._processed.tick()
            self._recording.write(result)
        self._last = (item, result)
        self._rerender.clear()
        self._publish(item, result, fresh=True)

    def _publish(self, item: Captured, result: FrameResult | None, *, fresh: bool) -> None:
        pipeline = self._pipeline
        class_names = tuple(pipeline.class_names) if pipeline is not None else None
        shown = self._renderer.render(item.frame.image_bgr, result, class_names, self.options(), fresh=fresh)
        if fresh and self._recording.wants_video:
            self._recording.write_image(shown.image)
        self._seq += 1
        timings = dict(result.timings) if result is not None else {}
        timings["draw_app"] = shown.draw_ms
        packet = Packet(seq=self._seq, image=shown.image, display=shown.display, result=result,
                        media_time_s=float(item.frame.time_s), captured_at=item.captured_at, published_at=time.monotonic(),
                        capture_fps=self._capture.rate.rate() if self._capture is not None else 0.0,
                        processed_fps=self._processed.rate(), heads=shown.heads, heads_face_id=shown.heads_face_id,
                        recording_rows=self._recording.rows, timings=timings)
        if self.out.put(packet):  # else the UI has a signal pending and will take this newer packet with it
            self.frame_ready.emit(packet)

    def _shutdown(self) -> None:
        try:
            self._recording.stop("")
        except Exception:
            log.exception("closing the recording failed")
        self._do_close_source()
        if self._pipeline is not None:
            try:
                self._pipeline.close()
            except Exception:
                log.exception("closing the pipeline failed")
            self._pipeline = None


"""Capture, inference, drawing and recording, all off the UI thread.

Two threads per running source:

* ``Capture`` (a plain thread) reads frames, paces files to real time, honours pause/seek and
  drops into a single-slot handoff: the newest frame wins, a slow pipeline never builds a queue.
* ``Engine`` (a QObject living in a QThread) takes the newest frame, runs the pipeline, writes the
  recording, draws the annotated frame and hands a ``Packet`` to the UI through ``Signal(object)``.

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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, Signal, Slot

import app._compat  # noqa: F401  (first: PySide6 6.12 on Python 3.11, see app/_compat.py)
from app.state import LatestSlot, RateMeter
from dan_core.errors import DanFerError

log = logging.getLogger(__name__)


# ------------------------------------------------------------------------------------------ messages


@dataclass(frozen=True)
class AppError:
    """A problem shown in the window's banner. ``kind`` picks the actions offered next to it."""

    kind: str  # "camera" | "source" | "camera_lost" | "source_failed" | "model" | "landmarker" | "record" | "internal"
    message: str


@dataclass(frozen=True)
class SourceInfo:
    spec: str
    name: str
    is_live: bool
    is_still: bool
    fps: float
    duration_s: float | None
    mode: str = "video"  # the landmarker mode it needs: "image" for photos and folders of photos


@dataclass(frozen=True)
class PipelineInfo:
    backend: str
    model_name: str
    class_names: tuple[str, ...]
    num_heads: int
    input_size: int
    train_dataset: str = ""


@dataclass(frozen=True)
class RecordingInfo:
    active: bool
    csv_path: Path | None
    video_path: Path | None = None
    rows: int = 0
    message: str = ""


@dataclass
class RenderOptions:
    heatmap: str = "fused"
    opacity: float = 0.5
    landmarks: bool = False
    face_bars: bool = False  # probability bars drawn beside each face (the side panel always has them)
    selected_id: int | None = None
    view_size: tuple[int, int] | None = None  # device pixels of the view: frames are scaled here, not on the UI thread


@dataclass
class Packet:
    """One displayed frame: the annotated picture and what the panels need."""

    seq: int
    image: np.ndarray  # (H, W, 3) uint8 BGR, annotated, C-contiguous, frame resolution (snapshots, recording)
    display: np.ndarray  # the same scaled to fit the view, BGRA (what the UI thread blits as it is)
    result: Any  # FrameResult | None (None while no model is loaded)
    media_time_s: float
    captured_at: float  # time.monotonic() when the frame left the source
    published_at: float
    capture_fps: float
    processed_fps: float
    heads: np.ndarray | None = None  # (S, (K+2)*S, 4) BGRA strip for the selected face: crop, fused, head1..K
    heads_face_id: int | None = None
    recording_rows: int | None = None
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def latency_ms(self) -> float:
        return (self.published_at - self.captured_at) * 1000.0


@dataclass(frozen=True)
class _Captured:
    frame: Any  # pipeline Frame(image_bgr, index, time_s)
    captured_at: float
    generation: int  # bumps on seek / source change: stale frames are recognisable


@dataclass(frozen=True)
class _Detected:
    """A frame after the detect stage (landmarks + aligned crops), waiting for classification."""

    captured: _Captured
    detections: Any  # pipeline Detections, or None while no model is loaded
    epoch: int  # which pipeline produced it: detections of a replaced pipeline are dropped


@dataclass(frozen=True)
class _DetectFailed:
    captured: _Captured
    message: str


@dataclass(frozen=True)
class _SourceEnd:
    generation: int
    lost: bool  # a live source stopped delivering
    error: str | None = None


# ------------------------------------------------------------------------------------------ capture


class Capture:
    """Reads a FrameSource on its own thread into ``slot``; pause, seek and stop are cooperative."""

    LATE_RESYNC_S = 0.5  # further behind than this: restart the clock instead of racing to catch up

    def __init__(self, source: Any, slot: LatestSlot, *, generation: int = 0) -> None:
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
    def _end(self, marker: _SourceEnd) -> None:
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
                        self._end(_SourceEnd(generation, lost=True, error=error))
                        return
                    self._end(_SourceEnd(generation, lost=False, error=error))
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
                    self.slot.put(_Captured(frame, time.monotonic(), generation))
        except DanFerError as exc:
            self._end(_SourceEnd(self._generation, lost=bool(src.is_live), error=str(exc)))
        except Exception as exc:  # a decoder crash must reach the user, not vanish with the thread
            log.exception("capture failed")
            self._end(_SourceEnd(self._generation, lost=bool(src.is_live), error=f"{type(exc).__name__}: {exc}"))


# ------------------------------------------------------------------------------------------ engine


def _default_open_source(spec: str) -> Any:
    from dan_core.pipeline.sources import open_source

    return open_source(spec)


def _default_make_pipeline(config: Any) -> Any:
    from dan_core.pipeline import Pipeline

    return Pipeline(config)


def is_still_path(spec: str) -> bool:
    from dan_core.pipeline.sources import IMAGE_SUFFIXES

    return Path(spec).suffix.lower() in IMAGE_SUFFIXES


def source_mode(source: Any, spec: str) -> str:
    """The landmarker mode a source needs: "image" for photos and folders of photos, else "video"."""
    from dan_core.pipeline.sources import ImageSource

    return "image" if isinstance(source, ImageSource) or (not getattr(source, "is_live", False) and is_still_path(spec)) else "video"


def _classify_pipeline_error(message: str) -> str:
    """Which banner (and which next step) a pipeline error gets: landmarker, backend or model."""
    text = message.lower()
    if "landmark" in text or ".task" in text:
        return "landmarker"
    if "--backend" in text or "cuda" in text or "driver" in text:
        return "backend"
    return "model"


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

    HEADS_INTERVAL_S = 1 / 12  # the attention tiles refresh at most this often while playing (a few ms each)

    def __init__(
        self,
        *,
        open_source: Callable[[str], Any] = _default_open_source,
        make_pipeline: Callable[[Any], Any] = _default_make_pipeline,
    ) -> None:
        super().__init__()
        self._open_source = open_source
        self._make_pipeline = make_pipeline
        self._commands: queue.SimpleQueue[tuple[Callable[..., None], tuple]] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._frames: LatestSlot = LatestSlot()  # capture -> detect stage
        self._detected: LatestSlot = LatestSlot()  # detect stage -> classify, record, draw
        self._pipe_lock = threading.Lock()  # held while detecting and while replacing the pipeline
        self._epoch = 0
        self._source_count = 0
        self.out: LatestSlot[Packet] = LatestSlot()  # the UI pulls the newest packet from here
        self._options = RenderOptions()
        self._options_lock = threading.Lock()
        self._rerender = threading.Event()
        self._capture: Capture | None = None
        self._source_info: SourceInfo | None = None
        self._pipeline: Any = None
        self._config: Any = None
        self._processed = RateMeter()
        self._seq = 0
        self._last: tuple[_Captured, Any] | None = None  # for re-rendering when paused / still
        self._last_generation = -1
        self._last_captured: _Captured | None = None  # the newest frame seen, analysed again after a model change
        self._last_image: np.ndarray | None = None
        self._heads_cache: tuple[float, int, np.ndarray] | None = None  # (when, face id, BGRA strip)
        self._ptime = 0.0  # strictly increasing timestamps for the pipeline's VIDEO mode
        self._last_media: float | None = None
        self._writer: Any = None  # TimelineWriter
        self._video: Any = None  # cv2.VideoWriter
        self._video_path: Path | None = None

    # --- requests (any thread)
    def _request(self, fn: Callable[..., None], *args: Any) -> None:
        self._commands.put((fn, args))  # executed within ~20 ms by the engine loop

    def configure(self, config: Any) -> None:
        """Build (or rebuild) the pipeline from a PipelineConfig."""
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
        self._request(self._do_stop_recording, "")

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
                        self._publish(*self._last, process=False)
                    continue
                try:
                    if isinstance(item, _SourceEnd):
                        if self._capture is not None and item.generation == self._capture.generation:
                            self._on_source_end(item)
                    elif isinstance(item, _DetectFailed):
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
            if isinstance(item, _SourceEnd):
                while not self._detected.wait_empty(0.1) and not self._stop.is_set():
                    pass  # let the engine take the last frame first
                self._detected.put(item)
                continue
            try:
                with self._pipe_lock:
                    pipe, epoch = self._pipeline, self._epoch
                    det = None
                    if pipe is not None:
                        det = pipe.detect(item.frame.image_bgr, self._pipeline_time(float(item.frame.time_s)),
                                          index=int(item.frame.index))
                self._detected.put(_Detected(item, det, epoch))
            except Exception as exc:  # reported by the engine thread; the stage keeps running
                log.exception("face detection failed")
                self._detected.put(_DetectFailed(item, f"face detection failed: {type(exc).__name__}: {exc}"))
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
    def _do_configure(self, config: Any) -> None:
        if self._writer is not None:
            self._do_stop_recording("Settings changed.")  # the CSV's columns belong to the old model
        with self._pipe_lock:
            old, self._pipeline = self._pipeline, None
            self._epoch += 1
            self._ptime, self._last_media = 0.0, None
        if old is not None:
            old.close()
        self._last = None
        self._config = config
        try:
            pipeline = self._make_pipeline(config)
        except DanFerError as exc:
            self.failed.emit(AppError(_classify_pipeline_error(str(exc)), str(exc)))
            return
        except Exception as exc:  # e.g. an ONNX file that is not a DAN model
            log.exception("building the pipeline failed")
            self.failed.emit(AppError("model", f"could not load the model: {type(exc).__name__}: {exc}"))
            return
        with self._pipe_lock:
            self._pipeline = pipeline
            self._epoch += 1
        p = pipeline
        if self._last_captured is not None and self._capture is not None:
            self._frames.put(self._last_captured)  # a still (or paused) frame is analysed with the new model
        self.pipeline_ready.emit(
            PipelineInfo(
                backend=str(p.backend),
                model_name=str(p.model_name),
                class_names=tuple(p.class_names),
                num_heads=int(p.num_heads),
                input_size=int(p.input_size),
                train_dataset=str(getattr(p, "meta", {}).get("train_dataset", "") or ""),
            )
        )
        self._rerender.set()

    def _do_open_source(self, spec: str) -> None:
        self._do_stop_recording("Source changed.")  # one recording, one source (its sidecar names it)
        self._do_close_source()
        try:
            source = self._open_source(spec)
        except DanFerError as exc:
            kind = "camera" if spec.isdigit() else "source"
            self.failed.emit(AppError(kind, str(exc)))
            return
        except Exception as exc:
            log.exception("opening %s failed", spec)
            self.failed.emit(AppError("camera" if spec.isdigit() else "source", f"cannot open {spec}: {exc}"))
            return
        is_live = bool(getattr(source, "is_live", False))
        fps = float(getattr(source, "fps", 0.0) or 0.0)
        count = getattr(source, "frame_count", None)
        still = not is_live and (is_still_path(spec) or count == 1)
        duration = (count / fps) if (count and fps > 0 and not is_live and not still) else None
        name = f"camera {spec}" if spec.isdigit() else Path(spec).name
        mode = source_mode(source, spec)
        self._source_info = SourceInfo(spec, name, is_live, still, fps, duration, mode)
        self.source_opened.emit(self._source_info)
        self._last = self._last_captured = None
        if self._config is not None and getattr(self._config, "mode", mode) != mode:
            self._do_configure(dataclasses.replace(self._config, mode=mode))  # stills: IMAGE mode finds small faces too
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
        if self._writer is not None:
            self._do_stop_recording("")
        if self._pipeline is None:
            self.failed.emit(AppError("record", "cannot record: no model is loaded (choose one in Settings)"))
            self.recording_changed.emit(RecordingInfo(False, None))
            return
        from dan_core.pipeline.timeline import TimelineWriter

        meta = {
            "source": self._source_info.spec if self._source_info else None,
            "backend": str(self._pipeline.backend),
            "model": str(self._pipeline.model_name),
            "fps": self._source_info.fps if self._source_info else None,
            "recorded_by": "dan-fer app",
        }
        try:
            csv_path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            self.failed.emit(AppError("record", f"cannot create the record folder {csv_path.parent}: {exc.strerror}"))
            self.recording_changed.emit(RecordingInfo(False, None))
            return
        try:
            self._writer = TimelineWriter(csv_path, tuple(self._pipeline.class_names), meta=meta, force=force)
        except DanFerError as exc:
            self.failed.emit(AppError("record", str(exc)))
            self.recording_changed.emit(RecordingInfo(False, None))
            return
        self._video_path = video_path
        self._video = None  # opened on the first frame, when its size is known
        self.recording_changed.emit(RecordingInfo(True, Path(self._writer.path), video_path, 0))

    def _do_stop_recording(self, reason: str) -> None:
        if self._writer is None:
            return
        writer, self._writer = self._writer, None
        rows = int(writer.rows)
        path = Path(writer.path)
        try:
            writer.close()
        except DanFerError as exc:  # e.g. the disk filled up: say so, and still leave the recording state
            self.failed.emit(AppError("record", f"the recording could not be finished: {exc}"))
        finally:
            if self._video is not None:
                self._video.release()
                self._video = None
        message = f"Recording saved: {path} ({rows} rows)"
        if self._video_path is not None:
            message += f" and {self._video_path.name}"
        if reason:
            message = f"{reason} {message}"
        self.recording_changed.emit(RecordingInfo(False, path, self._video_path, rows, message))
        self._video_path = None

    def _do_snapshot(self, path: Path) -> None:
        if self._last_image is None:
            self.info.emit("Nothing to snapshot yet")
            return
        import cv2

        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            ok = cv2.imwrite(str(path), self._last_image)
        except (OSError, cv2.error) as exc:
            ok = False
            log.warning("snapshot failed: %s", exc)
        if not ok:
            self.failed.emit(AppError("record", f"could not write the snapshot {path}: check the record folder in Settings"))
            return
        self.snapshot_saved.emit(path)

    # --- frames
    def _on_source_end(self, end: _SourceEnd) -> None:
        info = self._source_info
        if end.error is not None or end.lost:
            self._do_stop_recording("Source stopped.")
            if end.lost:
                msg = "The camera stopped delivering frames (unplugged or in use by another program)."
                if end.error and "stopped delivering" not in end.error:
                    msg += f" ({end.error})"
                self.failed.emit(AppError("camera_lost", msg))
            else:
                self.failed.emit(AppError("source_failed", f"{info.name if info else 'the source'} ended early: {end.error}"))
            return
        if info is not None and not info.is_still:
            self._do_stop_recording("End of video.")
            self.source_ended.emit(info)

    def _pipeline_time(self, media_time: float) -> float:
        """Media time made strictly increasing (seeking back must not break VIDEO mode)."""
        if self._last_media is None:
            step = 0.0 if self._ptime == 0.0 else 0.04
        else:
            step = media_time - self._last_media
            if step <= 0:
                step = 0.04
        self._last_media = media_time
        self._ptime = self._ptime + max(step, 1e-3)
        return self._ptime

    def _handle_frame(self, detected: _Detected) -> None:
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
            result = self._pipeline.classify(detected.detections)
            result.timings["classify_app"] = (time.perf_counter() - t0) * 1000.0
            try:
                result = dataclasses.replace(result, time_s=float(item.frame.time_s), index=int(item.frame.index))
            except TypeError:  # not a dataclass: keep the pipeline's own times
                pass
            self._processed.tick()
            if self._writer is not None:
                try:
                    self._writer.write(result)
                except DanFerError as exc:
                    self.failed.emit(AppError("record", f"recording stopped: {exc}"))
                    self._do_stop_recording("")
        self._last = (item, result)
        self._rerender.clear()
        self._publish(item, result, process=True)

    def _publish(self, item: _Captured, result: Any, *, process: bool) -> None:
        opts = self.options()
        image = item.frame.image_bgr
        heads = None
        heads_id = None
        t0 = time.perf_counter()
        if result is not None and self._pipeline is not None:
            from dan_core.pipeline.draw import draw_results

            class_names = tuple(self._pipeline.class_names)
            image = draw_results(
                image,
                result,
                class_names,
                heatmap=opts.heatmap,
                opacity=opts.opacity,
                landmarks=opts.landmarks,
                bars=opts.face_bars,
                selected_id=opts.selected_id,
            )
            face = _selected_face(result, opts.selected_id)
            if face is not None:
                now = time.monotonic()
                cached = self._heads_cache
                if cached is None or not process or cached[1] != face.face_id or now - cached[0] >= self.HEADS_INTERVAL_S:
                    cached = self._heads_cache = (now, face.face_id, _bgra(head_strip(face, opacity=max(opts.opacity, 0.35))))
                heads, heads_id = cached[2], face.face_id
        elif image.ndim == 2:
            import cv2

            image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
        elif image.shape[2] == 4:
            image = image[:, :, :3]
        image = np.ascontiguousarray(image)
        draw_ms = (time.perf_counter() - t0) * 1000.0
        if process and self._writer is not None and self._video_path is not None:
            self._write_video(image)
        self._last_image = image
        display = _bgra(fit_to(image, opts.view_size))  # scaled and in Qt's native layout, here and not on the UI thread
        self._seq += 1
        timings = dict(getattr(result, "timings", {}) or {}) if result is not None else {}
        timings["draw_app"] = draw_ms
        packet = Packet(
            seq=self._seq,
            image=image,
            display=display,
            result=result,
            media_time_s=float(item.frame.time_s),
            captured_at=item.captured_at,
            published_at=time.monotonic(),
            capture_fps=self._capture.rate.rate() if self._capture is not None else 0.0,
            processed_fps=self._processed.rate(),
            heads=heads,
            heads_face_id=heads_id,
            recording_rows=int(self._writer.rows) if self._writer is not None else None,
            timings=timings,
        )
        if self.out.put(packet):  # else the UI has a signal pending and will take this newer packet with it
            self.frame_ready.emit(packet)

    def _write_video(self, image: np.ndarray) -> None:
        import cv2

        if self._video is None:
            h, w = image.shape[:2]
            fps = self._source_info.fps if self._source_info and self._source_info.fps > 0 else 25.0
            assert self._video_path is not None
            self._video = cv2.VideoWriter(str(self._video_path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
            if not self._video.isOpened():
                self._video = None
                self.failed.emit(AppError("record", f"cannot write the annotated video {self._video_path}; the CSV continues"))
                self._video_path = None
                return
        self._video.write(image)

    def _shutdown(self) -> None:
        try:
            self._do_stop_recording("")
        except Exception:
            log.exception("closing the recording failed")
        self._do_close_source()
        if self._pipeline is not None:
            try:
                self._pipeline.close()
            except Exception:
                log.exception("closing the pipeline failed")
            self._pipeline = None


def _bgra(image: np.ndarray) -> np.ndarray:
    import cv2

    return cv2.cvtColor(image, cv2.COLOR_BGR2BGRA)  # (H, W, 4): QImage.Format_RGB32 in memory


def fit_to(image: np.ndarray, size: tuple[int, int] | None) -> np.ndarray:
    """``image`` scaled to fit inside ``size`` (w, h) keeping its aspect ratio (OpenCV, off the UI thread)."""
    if not size or size[0] < 2 or size[1] < 2:
        return image
    import cv2

    h, w = image.shape[:2]
    scale = min(size[0] / w, size[1] / h)
    tw, th = max(1, int(round(w * scale))), max(1, int(round(h * scale)))
    if (tw, th) == (w, h):
        return image
    return cv2.resize(image, (tw, th), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)


def _selected_face(result: Any, selected_id: int | None) -> Any:
    faces = list(getattr(result, "faces", []) or [])
    if not faces:
        return None
    for f in faces:
        if f.face_id == selected_id:
            return f
    return max(faces, key=lambda f: f.box[2] * f.box[3])


def head_strip(face: Any, *, opacity: float = 0.5, size: int = 96) -> np.ndarray:
    """The selected face's aligned crop, then the fused map, then each head's map: (size, (K+2)*size, 3) BGR."""
    import cv2

    crop = np.asarray(face.crop)
    if crop.ndim == 2:
        crop = cv2.cvtColor(crop, cv2.COLOR_GRAY2BGR)
    crop = cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA)
    att = np.asarray(face.attention, dtype=np.float32)  # (K, h, w)
    maps = [att.mean(axis=0), *att]
    tiles = [crop]
    for m in maps:
        lo, hi = float(m.min()), float(m.max())
        norm = (m - lo) / (hi - lo) if hi > lo else np.zeros_like(m)
        up = cv2.resize(norm, (size, size), interpolation=cv2.INTER_CUBIC)
        colour = cv2.applyColorMap(np.clip(up * 255, 0, 255).astype(np.uint8), cv2.COLORMAP_JET)
        tiles.append(cv2.addWeighted(crop, 1.0 - opacity, colour, opacity, 0.0))
    return np.ascontiguousarray(np.hstack(tiles))  # (S, (K+2)*S, 3)

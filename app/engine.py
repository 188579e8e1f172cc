"""The engine: the app's worker thread, steering the live analysis and turning its frames into ``Packet``s.

The analysis itself is Qt-free and lives in the library: ``dan_core.pipeline.playback.Capture``
reads the source, ``dan_core.pipeline.live.LiveAnalysis`` detects on a thread of its own, then
classifies, records, streams and draws each frame when the engine thread takes it, and hands back
one ``LiveUpdate``. A frame crosses into the app once, finished: the engine wraps it into a
``Packet`` and hands it to the UI through ``Signal(object)``. The engine changes the live
analysis only through its methods (the model, the recording, the study links).

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
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal, Slot

import app._compat  # noqa: F401  (first: PySide6 6.12 on Python 3.11, see app/_compat.py)
from app.messages import AppError, Packet, PipelineInfo, SourceInfo, pipeline_error_kind
from app.recording import Recording
from dan_core.errors import DanFerError
from dan_core.pipeline import Pipeline, PipelineConfig, sources
from dan_core.pipeline.handoff import LatestSlot
from dan_core.pipeline.live import LiveAnalysis, LiveUpdate, Shown
from dan_core.pipeline.playback import Capture, SourceEnd
from dan_core.pipeline.render import RenderOptions
from dan_core.pipeline.sources import FrameSource, source_mode
from dan_core.pipeline.study import StudyOptions

log = logging.getLogger(__name__)


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
    marker_added = Signal(object)  # dan_core.pipeline.events.Event, written to <csv>.events.csv
    replaying = Signal(object)  # SourceInfo: a video that had ended plays again from its start (R after the end)
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
        self._live = LiveAnalysis()  # detect thread; classify, record, stream, draw on take()
        self._source_count = 0
        self.out: LatestSlot[Packet] = LatestSlot()  # the UI pulls the newest packet from here
        self._options = RenderOptions()
        self._options_lock = threading.Lock()
        self._rerender = threading.Event()
        self._capture: Capture | None = None
        self._source_info: SourceInfo | None = None
        self._ended = False  # the open video reached its end (a recording started now replays it)
        self._config: PipelineConfig | None = None
        self._seq = 0
        self._recording = Recording(self._live, failed=self.failed.emit, changed=self.recording_changed.emit)

    # --- requests (any thread)
    def _request(self, fn: Callable[..., None], *args: Any) -> None:
        self._commands.put((fn, args))  # executed within ~20 ms by the engine loop

    def configure(self, config: PipelineConfig) -> None:
        """Build (or rebuild) the pipeline; its landmarker mode follows the open source."""
        self._request(self._do_configure, config)

    def open_source(self, spec: str) -> None:
        self._request(self._do_open_source, str(spec))

    def set_paused(self, paused: bool) -> None:
        capture = self._capture  # one read: the engine thread may replace it meanwhile
        if capture is not None:
            capture.set_paused(paused)

    def seek(self, time_s: float) -> None:
        capture = self._capture
        if capture is not None:
            self._ended = False
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

    def add_marker(self, label: str, time_s: float, frame: int | None) -> None:
        """A marker at the shown frame (keys 1-9, M), written to the recording's events file at once."""
        self._request(self._do_add_marker, str(label), float(time_s), frame)

    def enable_study(self, options: StudyOptions | None = None, **fields: Any) -> None:
        """The study parts asked for (``StudyOptions``, or its fields: lsl=True: LSL outlets for faces and markers;
        lsl_markers=True: record every LSL Markers stream's markers)."""
        self._request(self._live.enable_study, dataclasses.replace(options or StudyOptions(), **fields))

    def stop(self) -> None:
        """Cooperative stop: the loop finishes its current frame, closes the recording and returns."""
        self._stop.set()
        capture = self._capture
        if capture is not None:
            capture.set_paused(False)

    # --- the loop (engine thread)
    @Slot()
    def run(self) -> None:
        """Take finished frames from the live analysis and publish them; run requests between frames."""
        self._live.start()
        try:
            while not self._stop.is_set():
                self._drain_commands()
                capture = self._capture
                update = self._live.take(self.options(), generation=capture.generation if capture is not None else None)
                if self._stop.is_set():
                    break
                try:
                    self._on_update(update, capture)
                except DanFerError as exc:
                    self.failed.emit(AppError("internal", str(exc)))
                except Exception as exc:  # report, keep the loop alive for the next frame
                    log.exception("processing a frame failed")
                    self.failed.emit(AppError("internal", f"processing failed: {type(exc).__name__}: {exc}"))
                    time.sleep(0.2)  # do not spin on a frame that fails every time
        finally:
            self._stop.set()
            self._live.stop()
            self._shutdown()
            self.stopped.emit()

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
        old = self._live.set_pipeline(None)
        if old is not None:
            old.close()
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
        self._live.set_pipeline(pipeline)  # its LSL outlet follows the model's classes
        if self._capture is not None:
            self._live.analyse_last_again()  # a still (or paused) frame is analysed with the new model
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
        self._source_info = SourceInfo(spec, name, is_live, still, fps, duration, mode, count if not is_live else None)
        self._ended = False
        self._live.set_source_fps(fps)  # the LSL outlet's nominal rate
        self.source_opened.emit(self._source_info)
        self._live.clear(forget=True)
        if self._config is not None and getattr(self._config, "mode", mode) != mode:
            self._do_configure(self._config)  # the landmarker's mode follows the source (photo after video)
        self._source_count += 1
        self._capture = Capture(source, self._live.frames, generation=self._source_count << 32)  # seeks count up from there
        self._capture.start()

    def _do_close_source(self) -> None:
        if self._capture is not None:
            self._capture.stop()
            self._capture = None
        self._live.clear()

    def _do_start_recording(self, csv_path: Path, video_path: Path | None, force: bool) -> None:
        """Record from the next frame on (the sidecar ``dan-fer analyze`` writes). A video that had ended plays again from
        its start, recorded; a still image is analysed again, so that its one frame is recorded."""
        info = self._source_info
        self._recording.start(csv_path, video_path, force=force, source=info.record() if info else None)
        if not self._recording.active or info is None or self._capture is None:
            return
        if info.is_still:
            self._live.analyse_last_again()
        elif self._ended and not info.is_live:
            self._ended = False
            self._capture.seek(0.0)
            self.replaying.emit(info)
            self.info.emit(f"{info.name} had ended: recording it from the start")

    def _do_add_marker(self, label: str, time_s: float, frame: int | None) -> None:
        try:
            self._live.add_marker(label, time_s, frame, source="key")  # the app's keys 1-9 and M
        except DanFerError as exc:
            self.info.emit(f"Marker {label!r} not written: {exc}")
        self._tell_markers()

    def _tell_markers(self) -> None:
        for event in self._live.new_markers():
            self.marker_added.emit(event)

    def _do_snapshot(self, path: Path) -> None:
        saved = self._live.save_snapshot(path)
        if saved is None:
            self.info.emit("Nothing to snapshot yet")
        elif saved:
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
            self._ended = True
            self._recording.stop("End of video.")
            self.source_ended.emit(info)

    def _on_update(self, update: LiveUpdate, capture: Capture | None) -> None:
        """One update of the live analysis: the source's end, a failure, what stopped in the recording, a frame."""
        if update.empty:
            if self._rerender.is_set():
                self._rerender.clear()
                shown = self._live.redraw(self.options())
                if shown is not None:
                    self._publish(shown)
            return
        end = update.source_end
        if end is not None and capture is not None and end.generation == capture.generation:
            self._on_source_end(end)
        for message in filter(None, [update.detect_error, *update.output_errors]):
            self.failed.emit(AppError("internal", message))
        if update.recording_stopped is not None:
            self._recording.stopped_by_failure(update.recording_stopped)
        if update.video_stopped is not None:
            self._recording.video_stopped(update.video_stopped)
        if update.shown is not None:
            self._on_shown(update.shown)

    def _on_shown(self, shown: Shown) -> None:
        self._rerender.clear()
        self._publish(shown)
        self._tell_markers()  # LSL markers placed on the frames recorded

    def _publish(self, shown: Shown) -> None:
        captured, view = shown.captured, shown.view
        self._seq += 1
        packet = Packet(seq=self._seq, image=view.image, display=view.display, result=shown.result,
                        media_time_s=float(captured.frame.time_s), captured_at=captured.captured_at, published_at=time.monotonic(),
                        capture_fps=self._capture.rate.rate() if self._capture is not None else 0.0,
                        processed_fps=self._live.processed.rate(), heads=view.heads, heads_face_id=view.heads_face_id,
                        recording_rows=self._recording.rows, timings=shown.timings)
        if self.out.put(packet):  # else the UI has a signal pending and will take this newer packet with it
            self.frame_ready.emit(packet)

    def _shutdown(self) -> None:
        try:
            self._recording.stop("")
        except Exception:
            log.exception("closing the recording failed")
        self._do_close_source()
        self._live.close()  # the study links, the pipeline


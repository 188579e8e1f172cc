"""The app's recording: starts and stops the live analysis' ``Recorder`` and says what happened.

The CSV, its sidecar and the annotated video are written by ``dan_core.pipeline.recorder`` exactly
as ``dan-fer analyze`` writes them (``LiveAnalysis`` writes each frame). Problems become
``AppError("record", ...)``: a video that cannot be written stops only the video, a CSV that cannot
be written stops the recording; whatever was recorded stays on disk.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from app.messages import AppError, RecordingInfo
from dan_core.errors import DanFerError
from dan_core.pipeline.live import LiveAnalysis
from dan_core.pipeline.recorder import Recorder


class Recording:
    """Runs on the engine thread; ``failed`` and ``changed`` are the engine's signals."""

    def __init__(self, live: LiveAnalysis, *, failed: Callable[[AppError], None], changed: Callable[[RecordingInfo], None]) -> None:
        self._live = live
        self._failed = failed
        self._changed = changed

    @property
    def active(self) -> bool:
        return self._live.recorder is not None

    @property
    def rows(self) -> int | None:
        recorder = self._live.recorder
        return recorder.rows if recorder is not None else None

    def start(self, csv_path: Path, video_path: Path | None, *, force: bool, class_names: tuple[str, ...] | None,
              meta: dict, fps: float) -> None:
        if self.active:
            self.stop("")
        if class_names is None:
            self._refuse("cannot record: no model is loaded (choose one in Settings)")
            return
        try:
            csv_path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            self._refuse(f"cannot create the record folder {csv_path.parent}: {exc.strerror}")
            return
        try:
            recorder = Recorder(csv_path, class_names, meta=meta, force=force, video_path=video_path, fps=fps if fps > 0 else 25.0)
        except DanFerError as exc:
            self._refuse(str(exc))
            return
        try:
            self._live.study.start_recording(recorder.path, force=force)  # <csv>.events.csv, created at the first marker
        except DanFerError as exc:
            recorder.close()
            self._refuse(str(exc))
            return
        self._live.recorder = recorder
        self._changed(RecordingInfo(True, Path(recorder.path), video_path, 0))

    def _refuse(self, message: str) -> None:
        self._failed(AppError("record", message))
        self._changed(RecordingInfo(False, None))

    def rows_failed(self, message: str) -> None:
        """The CSV could not be written (a full disk): the recording stops and is not called saved."""
        self._failed(AppError("record", f"recording stopped: {message}"))
        self.stop("", failed=True)

    def video_failed(self, message: str) -> None:
        """The annotated video could not be written: it stops, the CSV goes on."""
        recorder = self._live.recorder
        if recorder is None:
            return
        try:
            recorder.drop_video()
        except DanFerError:
            pass  # the same failure, already in ``message``
        self._failed(AppError("record", f"the annotated video stopped: {message}; the CSV continues"))

    def stop(self, reason: str, *, failed: bool = False) -> None:
        """Finish the files and say so (``reason`` starts the message: "End of video." ...)."""
        recorder, self._live.recorder = self._live.recorder, None
        if recorder is None:
            return
        path = Path(recorder.path)
        video_path = recorder.video_path
        try:
            events = self._live.study.stop_recording()
        except DanFerError as exc:  # the markers placed so far stay on disk
            events = None
            self._failed(AppError("record", f"the markers could not be finished: {exc}"))
        try:
            recorder.close(**({"events": events} if events else {}))
        except DanFerError as exc:  # e.g. the disk filled up at the very end: say so, and still leave the recording state
            failed = True
            self._failed(AppError("record", f"the recording could not be finished: {exc}"))
        rows = int(recorder.rows_written)
        if failed:
            message = f"Recording stopped: {path} keeps its first {rows} rows, each whole"
        else:
            message = f"Recording saved: {path} ({rows} rows)"
            if video_path is not None:
                message += f" and {video_path.name}"
        if reason:
            message = f"{reason} {message}"
        self._changed(RecordingInfo(False, path, video_path, rows, message))

"""The app's recording: asks the live analysis to start and stop it, and says what happened.

The CSV, its sidecar, the events file and the annotated video are written by the library
(``LiveAnalysis.start_recording``: ``dan_core.pipeline.recorder`` exactly as ``dan-fer analyze``
writes them, each frame through the per-frame step). Problems become ``AppError("record", ...)``:
a video that cannot be written stops only the video, a CSV that cannot be written stops the
recording (the live analysis stops it and says so in its update); whatever was recorded stays on disk.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from app.messages import AppError, RecordingInfo
from dan_core.errors import DanFerError
from dan_core.pipeline.live import LiveAnalysis, RecordingEnd


class Recording:
    """Runs on the engine thread; ``failed`` and ``changed`` are the engine's signals."""

    def __init__(self, live: LiveAnalysis, *, failed: Callable[[AppError], None], changed: Callable[[RecordingInfo], None]) -> None:
        self._live = live
        self._failed = failed
        self._changed = changed

    @property
    def active(self) -> bool:
        return self._live.recording_rows is not None

    @property
    def rows(self) -> int | None:
        return self._live.recording_rows

    def start(self, csv_path: Path, video_path: Path | None, *, force: bool, source: dict | None) -> None:
        """Record to ``csv_path`` (and ``video_path``); ``source``: what the sidecar says of the source."""
        if self.active:
            self.stop("")
        try:
            csv_path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            self._refuse(f"cannot create the record folder {csv_path.parent}: {exc.strerror}")
            return
        try:
            self._live.start_recording(csv_path, video_path=video_path, force=force, source=source)
        except DanFerError as exc:
            self._refuse(str(exc))
            return
        self._changed(RecordingInfo(True, Path(csv_path), video_path, 0))

    def _refuse(self, message: str) -> None:
        self._failed(AppError("record", message))
        self._changed(RecordingInfo(False, None))

    def stopped_by_failure(self, end: RecordingEnd) -> None:
        """The CSV could not be written (a full disk): the recording stopped and is not called saved."""
        self._failed(AppError("record", f"recording stopped: {end.cause}"))
        self._tell(end, "")

    def video_stopped(self, message: str) -> None:
        """The annotated video could not be written: it stopped, the CSV goes on."""
        self._failed(AppError("record", f"the annotated video stopped: {message}; the CSV continues"))

    def stop(self, reason: str) -> None:
        """Finish the files and say so (``reason`` starts the message: "End of video." ...)."""
        end = self._live.stop_recording()
        if end is not None:
            self._tell(end, reason)

    def _tell(self, end: RecordingEnd, reason: str) -> None:
        for problem in end.problems:
            self._failed(AppError("record", problem))
        if end.failed:
            message = f"Recording stopped: {end.path} keeps its first {end.rows} rows, each whole"
        else:
            message = f"Recording saved: {end.path} ({end.rows} row{'' if end.rows == 1 else 's'}{dropped_note(end.frames)})"
            if end.video_path is not None:
                message += f" and {end.video_path.name}"
        if reason:
            message = f"{reason} {message}"
        self._changed(RecordingInfo(False, end.path, end.video_path, end.rows, message))


def dropped_note(frames: dict | None) -> str:
    """What the recording says of the frames it did not analyse (the sidecar has the same numbers under ``frames``)."""
    if not frames or not frames.get("processed"):
        return ""
    if not frames.get("dropped"):
        return "; every frame analysed" if frames["processed"] > 1 else ""
    gap = f"{frames['longest_gap_frames']} frames" + (f", {frames['longest_gap_s']:.2f} s" if frames.get("longest_gap_s") else "")
    return (f"; {frames['dropped']} of {frames['read']} frames dropped to keep up (longest gap {gap}); "
            "the frame numbers show where")

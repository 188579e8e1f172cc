"""One recording: the timeline CSV, its JSON sidecar and, optionally, the annotated video.

``dan-fer analyze`` and the desktop app record through ``Recorder``; the CSV format itself is
``timeline.TimelineWriter``'s. The annotated output is a video (H.264 in fragmented MP4, see
``videofile``), or an image file when a single still is analysed.

The first write that fails stops that output: DanFerError names the file and the cause, the CSV
keeps only whole rows, and ``close`` does not repeat (or hide) an error the caller already had.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from dan_core.errors import DanFerError
from dan_core.paths import IMAGE_SUFFIXES
from dan_core.pipeline.timeline import TimelineWriter
from dan_core.pipeline.videofile import H264Writer, OpenCVWriter, open_video


class AnnotatedWriter:
    """A video (see ``videofile``) opened on the first frame, when its size is known, or, for a single image, an image file."""

    def __init__(self, path: str | os.PathLike, fps: float, *, single_image: bool = False) -> None:
        self.path = Path(path)
        self.fps = fps
        self.image = self.path.suffix.lower() in IMAGE_SUFFIXES
        if self.image and not single_image:
            raise DanFerError(f"--annotated {self.path.name}: use a video file (.mp4) for more than one frame")
        self._writer: H264Writer | OpenCVWriter | None = None
        self.error: DanFerError | None = None  # the first failure; every later write repeats it
        self.encoder: str | None = None  # which writer the video got (videofile: H.264 or the OpenCV fallback)
        self.frames = 0

    def write(self, img: np.ndarray) -> None:
        """Append one BGR frame (a different size is scaled to the first frame's); DanFerError when it cannot be written."""
        if self.error is not None:
            raise self.error
        try:
            self._write(img)
        except DanFerError as exc:
            self.error = exc
            self.close()
            raise
        self.frames += 1

    def _write(self, img: np.ndarray) -> None:
        if self.image:
            ok, buf = cv2.imencode(self.path.suffix, img)
            if not ok:
                raise DanFerError(f"cannot encode {self.path}")
            try:
                self.path.write_bytes(buf.tobytes())
            except OSError as exc:
                raise DanFerError(f"cannot write {self.path}: {exc.strerror or exc}") from exc
            return
        if self._writer is None:
            self._writer = open_video(self.path, self.fps, (img.shape[1], img.shape[0]))
            self.encoder = self._writer.name
        if (img.shape[1], img.shape[0]) != self._writer.size:
            img = cv2.resize(img, self._writer.size, interpolation=cv2.INTER_AREA)  # folders of differently sized images
        self._writer.write(img)

    def close(self) -> None:
        """Finish the file; DanFerError when that fails and no write had failed before."""
        writer, self._writer = self._writer, None
        if writer is None:
            return
        try:
            writer.close()
        except DanFerError as exc:
            if self.error is None:
                self.error = exc
                raise


class Recorder:
    """The timeline CSV (+ sidecar) of a run and, when ``video_path`` is given, its annotated frames.

    ``write(result)`` adds the rows of one frame, ``write_image(img)`` one annotated frame; both raise
    DanFerError when the disk refuses. ``drop_video()`` stops the video and keeps the CSV going.
    """

    def __init__(self, csv_path: str | os.PathLike, class_names, *, meta: dict | None = None, force: bool = False,
                 video_path: str | os.PathLike | None = None, fps: float = 25.0, single_image: bool = False,
                 blendshapes: bool = False) -> None:
        self.timeline = TimelineWriter(csv_path, class_names, meta=meta, force=force, blendshapes=blendshapes)
        self.video: AnnotatedWriter | None = None
        if video_path is not None:
            try:
                self.video = AnnotatedWriter(video_path, fps, single_image=single_image)
            except DanFerError:
                self.timeline.close()
                raise

    @property
    def path(self) -> Path:
        return self.timeline.path

    @property
    def video_path(self) -> Path | None:
        return self.video.path if self.video is not None else None

    @property
    def rows(self) -> int:
        """Rows accepted so far (on disk within a second)."""
        return self.timeline.rows

    @property
    def rows_written(self) -> int:
        """Whole rows on disk."""
        return self.timeline.rows_written

    def write(self, result) -> None:
        self.timeline.write(result)

    def write_image(self, image: np.ndarray) -> None:
        if self.video is not None:
            self.video.write(image)

    def drop_video(self) -> None:
        """Stop the video (the CSV goes on); DanFerError when finishing it fails."""
        video, self.video = self.video, None
        if video is not None:
            video.close()

    def close(self, **summary) -> None:
        """Finish the CSV (totals and ``summary`` go into the sidecar), then the video, whatever happens to the CSV.

        Raises the first error that the caller has not seen yet (never a second one over the first).
        """
        errors: list[DanFerError] = []
        for finish in (lambda: self.timeline.close(**summary), self.drop_video):
            try:
                finish()
            except DanFerError as exc:
                errors.append(exc)
        if errors:
            raise errors[0]

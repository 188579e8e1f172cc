"""One recording: the timeline CSV, its JSON sidecar and, optionally, the annotated video.

``dan-fer analyze`` and the desktop app record through ``Recorder``; the CSV format itself is
``timeline.TimelineWriter``'s. The annotated output is an mp4 (OpenCV 'mp4v'), or an image file
when a single still is analysed.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from dan_core.errors import DanFerError
from dan_core.paths import IMAGE_SUFFIXES
from dan_core.pipeline.timeline import TimelineWriter


class AnnotatedWriter:
    """An mp4 (OpenCV 'mp4v') opened on the first frame, when its size is known, or, for a single image, an image file."""

    def __init__(self, path: str | os.PathLike, fps: float, *, single_image: bool = False) -> None:
        self.path = Path(path)
        self.fps = fps
        self.image = self.path.suffix.lower() in IMAGE_SUFFIXES
        if self.image and not single_image:
            raise DanFerError(f"--annotated {self.path.name}: use a video file (.mp4) for more than one frame")
        self._writer: cv2.VideoWriter | None = None
        self._size: tuple[int, int] | None = None
        self.frames = 0

    def write(self, img: np.ndarray) -> None:
        """Append one BGR frame (a different size is scaled to the first frame's); DanFerError when it cannot be written."""
        if self.image:
            ok, buf = cv2.imencode(self.path.suffix, img)
            if not ok:
                raise DanFerError(f"cannot encode {self.path}")
            try:
                self.path.write_bytes(buf.tobytes())
            except OSError as exc:
                raise DanFerError(f"cannot write {self.path}: {exc.strerror or exc}") from exc
            self.frames += 1
            return
        if self._writer is None:
            self._size = (img.shape[1], img.shape[0])
            self._writer = cv2.VideoWriter(str(self.path), cv2.VideoWriter_fourcc(*"mp4v"), self.fps, self._size)
            if not self._writer.isOpened():
                self._writer = None
                raise DanFerError(f"cannot write video {self.path} (OpenCV has no mp4v encoder for it; try a .mp4 name)")
        if (img.shape[1], img.shape[0]) != self._size:
            img = cv2.resize(img, self._size, interpolation=cv2.INTER_AREA)  # folders of differently sized images
        self._writer.write(img)
        self.frames += 1

    def close(self) -> None:
        if self._writer is not None:
            self._writer.release()
            self._writer = None


class Recorder:
    """The timeline CSV (+ sidecar) of a run and, when ``video_path`` is given, its annotated frames.

    ``write(result)`` adds the rows of one frame, ``write_image(img)`` one annotated frame; both raise
    DanFerError when the disk refuses. ``drop_video()`` stops the video and keeps the CSV going.
    """

    def __init__(self, csv_path: str | os.PathLike, class_names, *, meta: dict | None = None, force: bool = False,
                 video_path: str | os.PathLike | None = None, fps: float = 25.0, single_image: bool = False) -> None:
        self.timeline = TimelineWriter(csv_path, class_names, meta=meta, force=force)
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
        return self.timeline.rows

    def write(self, result) -> None:
        self.timeline.write(result)

    def write_image(self, image: np.ndarray) -> None:
        if self.video is not None:
            self.video.write(image)

    def drop_video(self) -> None:
        if self.video is not None:
            self.video.close()
            self.video = None

    def close(self, **summary) -> None:
        """Finish the CSV (totals and ``summary`` go into the sidecar), then the video, whatever happens to the CSV."""
        try:
            self.timeline.close(**summary)
        finally:
            if self.video is not None:
                self.video.close()

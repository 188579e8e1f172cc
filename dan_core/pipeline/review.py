"""A recorded session opened for review (no Qt): timeline, markers, the video it was made from, clips.

``Session(csv)`` reads the timeline (a killed run's too: no totals in its sidecar, a cut last
line), its ``<csv>.events.csv`` and finds the video: the source the sidecar names, else the
annotated video beside the CSV (``<csv stem>.mp4``, one picture per recorded frame). Positions are
indices into the recorded frames (``frames``, ``times``); ``image(pos)`` is that frame with each
face's box, id and dominant class drawn (an annotated video is shown as it is); ``export_clip``
writes the span between two positions as an annotated video.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from dan_core.errors import DanFerError
from dan_core.pipeline.draw import class_colors, draw_prob_bars
from dan_core.pipeline.events import Event, events_path, read_events
from dan_core.pipeline.recorder import AnnotatedWriter
from dan_core.pipeline.sources import quiet_opencv
from dan_core.pipeline.timeline import read_timeline


@dataclass(frozen=True)
class FaceRow:
    face_id: int
    box: tuple[int, int, int, int]
    probs: np.ndarray
    dominant: str
    confidence: float


def _plausible_fps(value) -> float | None:
    """A frame rate from a sidecar, or None when it is not one (text, NaN, negative, absurd: the file was edited or damaged)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if 0.0 < value <= 1000.0 else None  # NaN fails both comparisons


class Session:
    def __init__(self, csv_path: str | os.PathLike) -> None:
        self.csv_path = Path(csv_path)
        self.class_names, self.cols, self.meta = read_timeline(self.csv_path)
        if len(self.cols["frame"]) == 0:
            raise DanFerError(f"{self.csv_path} has no rows to review")
        self.complete = "finished" in self.meta  # a killed run never wrote its totals
        ev = events_path(self.csv_path)
        self.events: list[Event] = read_events(ev) if ev.is_file() else []
        self.frames, first = np.unique(self.cols["frame"], return_index=True)  # recorded frames, in order
        self.times = self.cols["time_s"][first]
        self.fps = _plausible_fps(self.meta.get("fps")) or _plausible_fps(self.meta.get("source_fps")) or self._fps_from_times()
        self.colors = class_colors(self.class_names)
        self.video_path, self.video_kind = self._find_video()
        self._cap = None
        self._next_video_frame = -1
        if self.video_path is not None:
            with quiet_opencv():
                self._cap = cv2.VideoCapture(str(self.video_path))
            if not self._cap.isOpened():
                self._cap = None
                self.video_path, self.video_kind = None, None

    def _fps_from_times(self) -> float:
        t = np.unique(self.cols["time_s"])
        return float(1.0 / np.median(np.diff(t))) if len(t) > 1 else 25.0

    def _find_video(self) -> tuple[Path | None, str | None]:
        source = self.meta.get("source")
        if isinstance(source, str) and source and not source.isdigit():  # a camera index, or a damaged sidecar: no video
            p = Path(str(source))
            if not p.is_absolute() and not p.exists():
                p = self.csv_path.parent / p
            if p.is_file():
                return p, "source"
        annotated = self.csv_path.with_suffix(".mp4")
        if annotated.is_file():
            return annotated, "annotated"
        return None, None

    def __len__(self) -> int:
        return len(self.frames)

    @property
    def duration_s(self) -> float:
        return float(self.times[-1] - self.times[0]) if len(self.times) else 0.0

    def position_at(self, time_s: float) -> int:
        """The recorded frame nearest to ``time_s``."""
        i = int(np.searchsorted(self.times, time_s))
        if i <= 0:
            return 0
        if i >= len(self.times):
            return len(self.times) - 1
        return i if abs(self.times[i] - time_s) < abs(time_s - self.times[i - 1]) else i - 1

    def faces_at(self, pos: int) -> list[FaceRow]:
        m = self.cols["frame"] == self.frames[pos]
        rows = []
        for j in np.flatnonzero(m):
            c = self.cols
            rows.append(FaceRow(int(c["face_id"][j]), (int(c["x"][j]), int(c["y"][j]), int(c["w"][j]), int(c["h"][j])),
                                np.array([c[n][j] for n in self.class_names], np.float32), str(c["dominant"][j]),
                                float(c["confidence"][j])))
        return rows

    def series(self, face_id: int) -> tuple[np.ndarray, np.ndarray]:
        """(times, probs (T, C)) of one face over the whole recording."""
        m = self.cols["face_id"] == face_id
        return self.cols["time_s"][m], np.stack([self.cols[n][m] for n in self.class_names], axis=1)

    def face_ids(self) -> list[int]:
        ids, counts = np.unique(self.cols["face_id"], return_counts=True)
        return [int(i) for i, _ in sorted(zip(ids, counts), key=lambda ic: -ic[1])]

    def _video_index(self, pos: int) -> int:
        return pos if self.video_kind == "annotated" else int(self.frames[pos])

    def raw_image(self, pos: int) -> np.ndarray | None:
        if self._cap is None:
            return None
        target = self._video_index(pos)
        with quiet_opencv():
            if target != self._next_video_frame:  # a jump: seek; stepping forward just reads on
                self._cap.set(cv2.CAP_PROP_POS_FRAMES, target)
            ok, img = self._cap.read()
        self._next_video_frame = target + 1 if ok else -1
        return img if ok else None

    def image(self, pos: int, *, bars: bool = True) -> np.ndarray | None:
        """The frame at ``pos`` with the recorded faces drawn (an annotated video as it is); None without a video."""
        img = self.raw_image(pos)
        if img is None or self.video_kind == "annotated":
            return img
        scale = float(np.clip(img.shape[0] / 720.0, 0.75, 2.0))
        for f in self.faces_at(pos):
            x, y, w, h = f.box
            color = self.colors.get(f.dominant, (255, 255, 255))
            cv2.rectangle(img, (x, y), (x + w, y + h), color, max(2, int(2 * scale)))
            cv2.putText(img, f"#{f.face_id} {f.dominant} {f.confidence * 100:.0f}%", (x, max(y - 8, 14)),
                        cv2.FONT_HERSHEY_SIMPLEX, 0.55 * scale, color, max(1, int(scale)), cv2.LINE_AA)
            if bars:
                draw_prob_bars(img, f.probs, self.class_names, self.colors, f.box, scale=scale)
        return img

    def export_clip(self, start: int, stop: int, path: str | os.PathLike, *,
                    progress: Callable[[int], None] | None = None) -> int:
        """Write recorded frames ``start..stop`` (inclusive) as an annotated video; returns the frames written."""
        if self._cap is None:
            raise DanFerError("no video for this recording: a clip needs the source video or the annotated video")
        start, stop = sorted((max(0, start), min(stop, len(self) - 1)))
        writer = AnnotatedWriter(path, self.fps or 25.0)
        try:
            for n, pos in enumerate(range(start, stop + 1)):
                img = self.image(pos)
                if img is not None:
                    writer.write(img)
                if progress is not None:
                    progress(n + 1)
        finally:
            writer.close()
        return writer.frames

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None

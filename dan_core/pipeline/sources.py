"""Frame sources: a camera index, a video file, an image, or a folder of images.

Every source yields ``Frame(image_bgr, index, time_s)`` with a BGR uint8 image (alpha dropped,
grey expanded). Problems opening a source are one DanFerError line; a video that breaks in the
middle simply ends at its last good frame (``FrameSource.error`` then says why).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

# FFmpeg inside OpenCV prints its own lines ("[h264 @ 0x...] Invalid NAL unit size", "moov atom not
# found") straight to file descriptor 2 when a video is empty, truncated or corrupt; we say what went
# wrong in one line ourselves. OpenCV reads this variable once, when it first opens a file with FFmpeg,
# so it is set before cv2 is used (DAN_FER_DEBUG=1 keeps FFmpeg's log).
if not os.environ.get("DAN_FER_DEBUG"):
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # AV_LOG_QUIET

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from dan_core.errors import DanFerError  # noqa: E402
from dan_core.paths import IMAGE_SUFFIXES  # noqa: E402
from dan_core.pipeline.frames import as_bgr  # noqa: E402

STILL_FPS = 1.0  # images and folders: one still per second of timeline


@dataclass
class Frame:
    image_bgr: np.ndarray  # (H, W, 3) uint8
    index: int
    time_s: float


@contextmanager
def quiet_opencv() -> Iterator[None]:
    """OpenCV prints [ WARN ] lines to stderr for missing cameras and odd files; we report ourselves."""
    level = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    try:
        yield
    finally:
        cv2.utils.logging.setLogLevel(level)


def _to_bgr(img: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(as_bgr(img))


def read_image(path: str | os.PathLike) -> np.ndarray:
    """An image file as BGR uint8 (any path: spaces, non-ASCII); DanFerError when unreadable."""
    path = Path(path)
    try:
        data = np.fromfile(path, dtype=np.uint8)  # cv2.imread cannot open non-ASCII paths on Windows
    except OSError as exc:
        raise DanFerError(f"cannot read image {path}: {exc.strerror or exc}") from exc
    with quiet_opencv():
        img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if img is None:
        raise DanFerError(f"cannot decode image {path} (corrupt or not an image)")
    return _to_bgr(img)


class FrameSource:
    """Iterable of Frame. ``fps``, ``frame_count`` (None when unknown), ``is_live``, ``seek``, ``close``."""

    fps: float = STILL_FPS
    frame_count: int | None = None
    is_live: bool = False
    name: str = ""
    error: str | None = None  # why a file source ended early, if it did

    def __iter__(self) -> Iterator[Frame]:
        raise NotImplementedError

    def seek(self, time_s: float) -> None:
        raise DanFerError(f"{self.name}: cannot seek in a live source")

    def close(self) -> None:
        pass

    def __enter__(self) -> FrameSource:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class ImageSource(FrameSource):
    """One image or a sorted folder of images; unreadable images in a folder are skipped."""

    def __init__(self, paths: list[Path], name: str) -> None:
        self.paths = paths
        self.name = name
        self.frame_count = len(paths)
        self._start = 0
        self.skipped: list[str] = []

    def __iter__(self) -> Iterator[Frame]:
        start, self._start = self._start, 0
        for i in range(start, len(self.paths)):
            try:
                img = read_image(self.paths[i])
            except DanFerError as exc:
                if len(self.paths) == 1:
                    raise
                self.skipped.append(str(exc))
                continue
            yield Frame(img, i, i / self.fps)

    def seek(self, time_s: float) -> None:
        self._start = min(max(int(round(time_s * self.fps)), 0), len(self.paths))


class VideoSource(FrameSource):
    def __init__(self, path: Path) -> None:
        self.name = str(path)
        with quiet_opencv():
            self._cap = cv2.VideoCapture(str(path))
        if not self._cap.isOpened():
            raise DanFerError(f"cannot open video {path} (corrupt, empty or an unsupported format)")
        fps = self._cap.get(cv2.CAP_PROP_FPS)
        self.fps = float(fps) if fps and np.isfinite(fps) and 0 < fps < 1000 else 25.0
        n = int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        self.frame_count = n if n > 0 else None
        self._index = 0
        with quiet_opencv():
            ok, first = self._cap.read()
        if not ok or first is None:
            self._cap.release()
            raise DanFerError(f"cannot read any frame from video {path} (corrupt or empty)")
        self._pending: np.ndarray | None = first  # read once to fail early; handed out first

    def __iter__(self) -> Iterator[Frame]:
        while True:
            if self._pending is not None:
                img, self._pending = self._pending, None
                frame = Frame(_to_bgr(img), self._index, self._index / self.fps)
                self._index += 1
                yield frame
                continue
            try:
                with quiet_opencv():
                    ok, img = self._cap.read()
            except cv2.error as exc:  # a broken stream: keep what was read
                self.error = str(exc).strip().splitlines()[-1][:200]
                return
            if not ok or img is None:
                if self.frame_count and self._index < self.frame_count - 1:
                    self.error = f"the video ended at frame {self._index} of {self.frame_count} (truncated or corrupt)"
                return
            frame = Frame(_to_bgr(img), self._index, self._index / self.fps)
            self._index += 1
            yield frame

    def skip(self, n: int) -> int:
        """Skip n frames without decoding them fully; returns how many were skipped."""
        done = 0
        if n > 0 and self._pending is not None:
            self._pending = None
            done = 1
        with quiet_opencv():
            while done < n and self._cap.grab():
                done += 1
        self._index += done
        return done

    def seek(self, time_s: float) -> None:
        target = max(int(round(time_s * self.fps)), 0)
        if self.frame_count:
            target = min(target, self.frame_count - 1)
        self._pending = None
        self._cap.set(cv2.CAP_PROP_POS_FRAMES, target)
        self._index = int(self._cap.get(cv2.CAP_PROP_POS_FRAMES))

    def close(self) -> None:
        self._cap.release()


class CameraSource(FrameSource):
    is_live = True

    def __init__(self, index: int) -> None:
        self.name = f"camera {index}"
        self.index = index
        with quiet_opencv():
            self._cap = cv2.VideoCapture(index)
            ok = self._cap.isOpened() and self._cap.grab()
        if not ok:
            self._cap.release()
            known = ", ".join(f"{i} ({n})" for i, n in list_cameras()) or "none found"
            raise DanFerError(f"camera {index} cannot be opened (available cameras: {known})")
        fps = self._cap.get(cv2.CAP_PROP_FPS)
        self.fps = float(fps) if fps and np.isfinite(fps) and 0 < fps < 1000 else 30.0

    def __iter__(self) -> Iterator[Frame]:
        start = time.monotonic()
        i = 0
        while True:
            with quiet_opencv():
                ok, img = self._cap.read()
            if not ok or img is None:
                self.error = f"{self.name} stopped delivering frames"
                return
            yield Frame(_to_bgr(img), i, time.monotonic() - start)
            i += 1

    def close(self) -> None:
        self._cap.release()


def open_source(spec: str | int | os.PathLike) -> FrameSource:
    """A camera index (int or a string of digits), a video file, an image file or a folder of images."""
    if isinstance(spec, int) or (isinstance(spec, str) and spec.strip().isdigit() and not Path(spec).exists()):
        return CameraSource(int(spec))
    path = Path(spec)
    if path.is_dir():
        images = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        if not images:
            raise DanFerError(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) in folder {path}")
        return ImageSource(images, str(path))
    if not path.exists():
        raise DanFerError(f"input not found: {path}")
    if not path.is_file():
        raise DanFerError(f"not a file: {path}")
    if path.suffix.lower() in IMAGE_SUFFIXES:
        read_image(path)  # fail now, with a clear message, not in the middle of a run
        return ImageSource([path], str(path))
    return VideoSource(path)


def source_mode(source: FrameSource | str | os.PathLike) -> str:
    """The landmarker mode a source needs: "image" for photos and folders of photos (independent
    stills, where small faces are searched in tiles too), "video" for videos and cameras.

    Takes an open source or the spec ``open_source`` would open (the same rule, decided here only).
    """
    if not isinstance(source, (str, int, os.PathLike)):  # an open source
        return "image" if isinstance(source, ImageSource) else "video"
    if isinstance(source, int) or (isinstance(source, str) and source.strip().isdigit() and not Path(source).exists()):
        return "video"
    path = Path(source)
    return "image" if path.is_dir() or path.suffix.lower() in IMAGE_SUFFIXES else "video"


def list_cameras() -> list[tuple[int, str]]:
    """(index, name) of the video capture devices; on Linux from sysfs, without opening them."""
    if sys.platform.startswith("linux"):
        found = []
        root = Path("/sys/class/video4linux")
        for dev in sorted(root.glob("video*"), key=lambda p: int(p.name[5:]) if p.name[5:].isdigit() else 1 << 30):
            if not dev.name[5:].isdigit():
                continue
            try:
                # a webcam usually has two nodes; node index 0 is the one that captures
                if (dev / "index").is_file() and (dev / "index").read_text().strip() not in ("", "0"):
                    continue
                name = (dev / "name").read_text(encoding="utf-8", errors="replace").strip()
            except OSError:
                continue
            found.append((int(dev.name[5:]), name or dev.name))
        return found
    cams = []
    with quiet_opencv():
        for i in range(4):  # other systems: probe the first few indices
            cap = cv2.VideoCapture(i)
            if cap.isOpened():
                cams.append((i, f"camera {i}"))
            cap.release()
    return cams

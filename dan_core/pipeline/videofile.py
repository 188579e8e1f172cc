"""Annotated video files: H.264 in fragmented MP4 through FFmpeg, or OpenCV's mp4v when FFmpeg is absent.

``H264Writer`` pipes raw BGR frames into the ``ffmpeg`` binary that imageio-ffmpeg's wheel ships
(with libx264). The MP4 is fragmented (``frag_keyframe+empty_moov``, a key frame every second,
each packet flushed), so the file plays in browsers and stays playable up to its last second even
when the process is killed with SIGKILL; FFmpeg runs in a session of its own, so Ctrl+C reaches
only us, and when we die it sees the end of its input and finishes the file itself.

``OpenCVWriter`` ('mp4v') is the fallback; it is announced once, because its files do not play in
browsers and are lost on SIGKILL (the index is written at the end).

Both raise DanFerError naming the file and the cause (e.g. "No space left on device") at the
first frame that cannot be written.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from dan_core.errors import DanFerError

log = logging.getLogger(__name__)
FFMPEG_ENV = "DAN_FER_FFMPEG"  # a path to another ffmpeg with libx264; "opencv" forces the OpenCV fallback
_announced = False


def find_ffmpeg() -> str | None:
    """$DAN_FER_FFMPEG, else the ffmpeg shipped in imageio-ffmpeg's wheel; None when there is none."""
    env = os.environ.get(FFMPEG_ENV, "")
    if env:
        return None if env.lower() == "opencv" else (shutil.which(env) or (env if Path(env).is_file() else None))
    try:
        import imageio_ffmpeg

        return imageio_ffmpeg.get_ffmpeg_exe()
    except (ImportError, RuntimeError):  # not installed, or no binary for this platform
        return None


def _cause(text: str) -> str:
    """The useful end of FFmpeg's last error line: "[out#0/mp4 @ 0x..] Error closing file: No space left on device"."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    if not lines:
        return "FFmpeg stopped"
    last = lines[-1]
    return last.rsplit(": ", 1)[-1] if ": " in last else last


class H264Writer:
    """Frames of one size -> H.264 (yuv420p, CRF 23) in a fragmented MP4, through an ffmpeg process."""

    name = "H.264 (FFmpeg)"

    def __init__(self, path: Path, fps: float, size: tuple[int, int], exe: str) -> None:
        self.path = path
        self.size = size
        w, h = size
        fps = fps if fps and 0 < fps < 1000 else 25.0
        self._log = tempfile.TemporaryFile()
        cmd = [
            exe, "-hide_banner", "-nostdin", "-loglevel", "error", "-y",
            "-f", "rawvideo", "-pix_fmt", "bgr24", "-s", f"{w}x{h}", "-r", f"{fps:.6g}", "-i", "pipe:0",
            "-an", "-vf", "pad=ceil(iw/2)*2:ceil(ih/2)*2",  # yuv420p needs even sides
            "-c:v", "libx264", "-preset", "veryfast", "-tune", "zerolatency", "-crf", "23", "-pix_fmt", "yuv420p",
            "-g", str(max(1, round(fps))),  # a key frame, so a fragment, every second
            "-flush_packets", "1", "-movflags", "+frag_keyframe+empty_moov+default_base_moof", "-f", "mp4", str(path),
        ]
        kwargs: dict = {"start_new_session": True} if sys.platform != "win32" else {
            "creationflags": subprocess.CREATE_NEW_PROCESS_GROUP}
        try:
            self._proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=self._log, **kwargs)
        except OSError as exc:
            self._log.close()
            raise DanFerError(f"cannot start FFmpeg for {path}: {exc.strerror or exc}") from exc

    def _failure(self) -> DanFerError:
        try:
            self._proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        self._log.seek(0)
        text = self._log.read().decode("utf-8", "replace")
        if not text.strip() and self._proc.returncode < 0:  # killed: SIGXFSZ is "File size limit exceeded"
            text = signal.strsignal(-self._proc.returncode) or f"FFmpeg was killed by signal {-self._proc.returncode}"
        return DanFerError(f"cannot write {self.path}: {_cause(text)}")

    def write(self, img: np.ndarray) -> None:
        if self._proc.poll() is not None:
            raise self._failure()
        try:
            self._proc.stdin.write(np.ascontiguousarray(img, dtype=np.uint8).data)
        except (BrokenPipeError, OSError) as exc:
            raise self._failure() from exc

    def close(self) -> None:
        """Finish the file; DanFerError when FFmpeg could not (a full disk at the very end)."""
        try:
            self._proc.stdin.close()
        except OSError:
            pass
        failed = self._proc.wait() != 0
        try:
            if failed:
                raise self._failure()
        finally:
            self._log.close()


class OpenCVWriter:
    """OpenCV's 'mp4v' writer; it reports no write errors, so a full disk is checked for each frame."""

    name = "mp4v (OpenCV)"

    def __init__(self, path: Path, fps: float, size: tuple[int, int]) -> None:
        import cv2

        self.path = path
        self.size = size
        self._writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
        if not self._writer.isOpened():
            raise DanFerError(f"cannot write video {path} (OpenCV has no mp4v encoder for it; try a .mp4 name)")

    def write(self, img: np.ndarray) -> None:
        folder = self.path.parent if str(self.path.parent) else Path(".")
        try:
            st = os.statvfs(folder) if hasattr(os, "statvfs") else None
        except OSError:
            st = None
        if st is not None and st.f_bavail * st.f_frsize < img.nbytes // 4:  # cannot hold one more frame
            raise DanFerError(f"cannot write {self.path}: No space left on device")
        self._writer.write(img)

    def close(self) -> None:
        self._writer.release()


def open_video(path: str | os.PathLike, fps: float, size: tuple[int, int]) -> H264Writer | OpenCVWriter:
    """The best writer available for ``path``: H.264 through FFmpeg, else OpenCV (said once, in the log)."""
    global _announced
    path = Path(path)
    exe = find_ffmpeg()
    if exe is not None:
        return H264Writer(path, fps, size, exe)
    if not _announced:
        _announced = True
        log.warning("imageio-ffmpeg's FFmpeg is not available: annotated videos are written by OpenCV as mp4v, which "
                    "browsers do not play and a killed process leaves unplayable (pip install imageio-ffmpeg)")
    return OpenCVWriter(path, fps, size)

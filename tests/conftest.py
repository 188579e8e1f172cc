"""Shared fixtures. Real files from ../shared are used where tests need real data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ["QT_QPA_PLATFORM"] = "offscreen"
os.environ.pop("QT_QPA_PLATFORM_PLUGIN_PATH", None)  # cv2 points this at its Qt 5 plugins
# liblsl (pylsl) reads this before its first use: announce and look for streams on this machine only
os.environ["LSLAPICFG"] = str(Path(__file__).resolve().parent / "lsl_api.cfg")
# tests import onnxruntime themselves too: no telemetry from them either (test_faults_cli checks dan-fer's own)
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"


def _shared(sub: str) -> Path:
    path = SHARED / sub
    if not SHARED.is_dir():
        pytest.skip(f"../shared is absent ({SHARED}); tests that need real data are skipped")
    return path


@pytest.fixture(scope="session")
def fer_dir() -> Path:
    return _shared("data/fer2013")


@pytest.fixture(scope="session")
def media_dir() -> Path:
    return _shared("media")


@pytest.fixture(scope="session")
def landmarker_path() -> Path:
    return _shared("models/face_landmarker.task")


def _count_frames(path: Path) -> int:
    import cv2

    cap = cv2.VideoCapture(str(path))
    n = 0
    while cap.read()[0]:
        n += 1
    cap.release()
    return n


@pytest.fixture(scope="session")
def count_frames():
    """``count_frames(path)``: the frames OpenCV can decode from a video file, read to the end."""
    return _count_frames



def _make_clip(dest: Path, start: int = 0, frames: int = 15, size: tuple[int, int] = (320, 180)) -> Path:
    """``frames`` frames of the shared face video from frame ``start`` (wrapping round), resized, as an mp4v file."""
    import cv2

    source = SHARED / "media" / "pexels_WolfgangLanger_emotions.mp4"
    cap = cv2.VideoCapture(str(source))
    cap.set(cv2.CAP_PROP_POS_FRAMES, start)
    writer = cv2.VideoWriter(str(dest), cv2.VideoWriter_fourcc(*"mp4v"), 25.0, size)
    for i in range(frames):
        ok, img = cap.read()
        if not ok:  # the source is shorter: play it again
            cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
            ok, img = cap.read()
        assert ok, f"frame {i} of {source}"
        writer.write(cv2.resize(img, size))
    writer.release()
    cap.release()
    return dest


@pytest.fixture(scope="session")
def make_clip(media_dir):
    """``make_clip(dest, start=0, frames=15, size=(320, 180))``: a short real clip of the shared face video."""
    return _make_clip

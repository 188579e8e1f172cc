"""Shared fixtures. Real files from ../shared are used where tests need real data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ["QT_QPA_PLATFORM"] = "offscreen"
os.environ.pop("QT_QPA_PLATFORM_PLUGIN_PATH", None)  # cv2 points this at its Qt 5 plugins
# liblsl (pylsl) reads this before its first use: announce and look for streams on this machine only
os.environ["LSLAPICFG"] = str(Path(__file__).resolve().parent / "lsl_api.cfg")

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


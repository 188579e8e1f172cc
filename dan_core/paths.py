"""Where the product finds its files (the shipped model, the assets) and which files are images."""

from __future__ import annotations

import os
from pathlib import Path

from dan_core.errors import DanFerError

PROJECT_ROOT = Path(__file__).resolve().parent.parent
MODELS_DIR = PROJECT_ROOT / "models"
ASSETS_DIR = PROJECT_ROOT / "assets"
# Still images every reader accepts (datasets, photos, folders of photos, annotated output)
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"})


def default_model_path() -> Path:
    """$DAN_FER_MODEL, else the one .onnx file shipped in models/."""
    env = os.environ.get("DAN_FER_MODEL")
    if env:
        return Path(env)
    found = sorted(MODELS_DIR.glob("*.onnx"))
    if not found:
        raise DanFerError(f"no model found: put an .onnx file in {MODELS_DIR} or pass --model PATH")
    return found[0]

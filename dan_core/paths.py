"""Where the product finds its files: the shipped model and the shared test data."""

from __future__ import annotations

import os
from pathlib import Path

from dan_core.errors import DanFerError

PROJECT_ROOT = Path(__file__).resolve().parent.parent
MODELS_DIR = PROJECT_ROOT / "models"
ASSETS_DIR = PROJECT_ROOT / "assets"


def default_model_path() -> Path:
    """$DAN_FER_MODEL, else the one .onnx file shipped in models/."""
    env = os.environ.get("DAN_FER_MODEL")
    if env:
        return Path(env)
    found = sorted(MODELS_DIR.glob("*.onnx"))
    if not found:
        raise DanFerError(f"no model found: put an .onnx file in {MODELS_DIR} or pass --model PATH")
    return found[0]

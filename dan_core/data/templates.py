"""Alignment templates: five [x, y] points (eye centres, nose tip, mouth corners) in [0, 1] crop coordinates.

The one parser of templates (model metadata, ``dan-fer export --template``, asset files) and the
known templates: the generic one, and those a dataset declares in ``classes.DATASETS``
(derived from its faces by ``python -m dan_core.pipeline.derive_template``). NumPy only.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from dan_core.classes import dataset_info
from dan_core.errors import DanFerError
from dan_core.paths import ASSETS_DIR

# ArcFace's 112x112 five-point template / 112 (insightface): a tight crop, eyes at 46% of the height.
GENERIC_TEMPLATE = np.array([
    [38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041],
], np.float32) / 112.0


def parse_template(value: object, input_size: int | None = None) -> np.ndarray:
    """JSON text, a list of 5 [x, y] pairs or {"points": [...]} -> (5, 2) float32 in [0, 1].

    Points above 1.5 are taken to be in input pixels and divided by ``input_size``.
    """
    if isinstance(value, (str, bytes)):
        value = json.loads(value)
    if isinstance(value, dict):
        value = value.get("points")
    arr = np.asarray(value, np.float32)
    if arr.shape != (5, 2) or not np.isfinite(arr).all():
        raise DanFerError(f"an alignment template must be 5 [x, y] points, got shape {arr.shape}")
    if arr.max() > 1.5:
        if not input_size:
            raise DanFerError("an alignment template in pixels needs the model's input size")
        arr = arr / float(input_size)
    return arr


def load_template_file(path: str | Path, input_size: int | None = None) -> np.ndarray:
    try:
        return parse_template(Path(path).read_text(encoding="utf-8"), input_size)
    except (OSError, ValueError) as exc:
        raise DanFerError(f"cannot read alignment template {path}: {exc}") from exc


def template_points(template: np.ndarray) -> list[list[float]]:
    """A (5, 2) template as the plain list a model config stores (float32 precision, 6 decimals)."""
    return [[round(float(x), 6), round(float(y), 6)] for x, y in np.asarray(template, np.float64)]


def dataset_template_path(dataset: str) -> Path | None:
    """The template file a dataset declares (``classes.DATASETS``), when it declares one that exists."""
    info = dataset_info(dataset)
    if info is None or info.template_file is None:
        return None
    path = ASSETS_DIR / info.template_file
    return path if path.is_file() else None

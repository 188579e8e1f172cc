"""Alignment: a similarity transform from five landmarks to the model's template, then one warp.

A template is five [x, y] points (eye centres, nose tip, mouth corners, see landmarks.py)
in normalised [0, 1] crop coordinates. Where it comes from, first match wins:
the model's ``template`` metadata, ``assets/ferplus_template.json`` for models trained on
FER2013/FER+ (derived from that data by ``python -m dan_core.pipeline.template``), else a
generic template (the widely used 112x112 ArcFace points, normalised).

FER2013 faces are 48x48 pixels; the training loop upsamples them bilinearly. For such models
the aligned crop goes through the same bottleneck (down to 48 with area averaging, up again
bilinearly), so live faces look as sharp as the faces the model learned from.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from dan_core.errors import DanFerError
from dan_core.paths import ASSETS_DIR

FERPLUS_TEMPLATE_PATH = ASSETS_DIR / "ferplus_template.json"
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


def load_template_file(path: str | Path) -> np.ndarray:
    try:
        return parse_template(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DanFerError(f"cannot read alignment template {path}: {exc}") from exc


def template_for(meta: dict[str, str], input_size: int) -> tuple[np.ndarray, str]:
    """(template, where it came from) for a model's metadata."""
    if meta.get("template"):
        return parse_template(meta["template"], input_size), "model metadata"
    if "fer" in meta.get("train_dataset", "").lower() and FERPLUS_TEMPLATE_PATH.is_file():
        return load_template_file(FERPLUS_TEMPLATE_PATH), FERPLUS_TEMPLATE_PATH.name
    return GENERIC_TEMPLATE.copy(), "generic (ArcFace)"


def source_size_for(meta: dict[str, str]) -> int | None:
    """Pixel size of the training faces, when known (48 for FER2013/FER+), else None."""
    if meta.get("source_size"):
        return int(meta["source_size"])
    return 48 if "fer" in meta.get("train_dataset", "").lower() else None


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity (rotation, uniform scale, translation) mapping src onto dst (Umeyama 1991).

    src, dst: (N, 2). Returns the (2, 3) float32 matrix M with dst ~ M @ [x, y, 1].
    """
    src = np.asarray(src, np.float64)
    dst = np.asarray(dst, np.float64)
    mu_s, mu_d = src.mean(axis=0), dst.mean(axis=0)
    s, d = src - mu_s, dst - mu_d
    var_s = (s**2).sum() / len(src)
    if var_s < 1e-12:
        raise DanFerError("degenerate landmarks: all alignment points coincide")
    cov = d.T @ s / len(src)  # (2, 2)
    u, sig, vt = np.linalg.svd(cov)
    sign = np.eye(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[1, 1] = -1.0  # a reflection is never a valid face alignment
    rot = u @ sign @ vt
    scale = np.trace(np.diag(sig) @ sign) / var_s
    m = np.empty((2, 3))
    m[:, :2] = scale * rot
    m[:, 2] = mu_d - scale * rot @ mu_s
    return m.astype(np.float32)


def invert_affine(m: np.ndarray) -> np.ndarray:
    return cv2.invertAffineTransform(np.asarray(m, np.float32)).astype(np.float32)


class Aligner:
    """Frame + five points -> (matrix, BGR crop of size x size) as the model sees it."""

    def __init__(self, template: np.ndarray, size: int, *, source_size: int | None = None) -> None:
        self.template = np.asarray(template, np.float32)
        self.size = int(size)
        self.source_size = source_size if source_size and source_size < size else None
        self.dst = self.template * self.size  # (5, 2) crop pixels

    def matrix(self, points: np.ndarray) -> np.ndarray:
        return similarity_transform(points, self.dst)

    def warp(self, frame_bgr: np.ndarray, matrix: np.ndarray) -> np.ndarray:
        crop = cv2.warpAffine(frame_bgr, matrix, (self.size, self.size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        if self.source_size:
            small = cv2.resize(crop, (self.source_size, self.source_size), interpolation=cv2.INTER_AREA)
            crop = cv2.resize(small, (self.size, self.size), interpolation=cv2.INTER_LINEAR)
        return crop

    def __call__(self, frame_bgr: np.ndarray, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        m = self.matrix(points)
        return m, self.warp(frame_bgr, m)


def to_model_input(crops_bgr: list[np.ndarray], color: str) -> np.ndarray:
    """BGR uint8 crops -> (N, 3, S, S) float32 in [0, 1]: RGB, or the grey face in all three channels."""
    planes = []
    for crop in crops_bgr:
        if color == "gray":
            g = cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY)
            planes.append(np.repeat(g[None], 3, axis=0))  # (3, S, S)
        else:
            planes.append(cv2.cvtColor(crop, cv2.COLOR_BGR2RGB).transpose(2, 0, 1))  # (3, S, S)
    return np.stack(planes).astype(np.float32) * (1.0 / 255.0)  # (N, 3, S, S)

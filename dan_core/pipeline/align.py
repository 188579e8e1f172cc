"""Alignment: a similarity transform from five landmarks to the model's template, then one warp.

A template is five [x, y] points (eye centres, nose tip, mouth corners, see landmarks.py)
in normalised [0, 1] crop coordinates (parsing: dan_core/data/templates.py). Where it comes from,
first match wins: the model's ``template`` metadata, the template its training dataset
declares (``classes.DATASETS``; FER2013/FER+: ``assets/ferplus_template.json``, derived from that
data by ``python -m dan_core.pipeline.derive_template``), else the generic ArcFace template.

Datasets of tiny faces declare their native size (FER2013: 48x48 pixels, upsampled bilinearly
for training). For their models the aligned crop goes through the same bottleneck (down to the
native size with area averaging, up again bilinearly), so live faces look as sharp as the faces
the model learned from.
"""

from __future__ import annotations

import cv2
import numpy as np

from dan_core.classes import dataset_info
from dan_core.data.templates import GENERIC_TEMPLATE, dataset_template_path, load_template_file, parse_template
from dan_core.errors import DanFerError


def template_for(meta: dict[str, str], input_size: int) -> tuple[np.ndarray, str]:
    """(template, where it came from) for a model's metadata."""
    if meta.get("template"):
        return parse_template(meta["template"], input_size), "model metadata"
    path = dataset_template_path(meta.get("train_dataset", ""))
    if path is not None:
        return load_template_file(path, input_size), path.name
    return GENERIC_TEMPLATE.copy(), "generic (ArcFace)"


def source_size_for(meta: dict[str, str]) -> int | None:
    """Pixel size of the training faces when they are tiny (48 for FER2013/FER+), else None."""
    for key in ("native_size", "source_size"):  # source_size: an earlier name of the same fact
        if meta.get(key):
            return int(meta[key])
    info = dataset_info(meta.get("train_dataset", ""))
    return info.native_size if info is not None else None


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

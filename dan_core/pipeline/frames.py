"""Frame pixels as every stage expects them: BGR uint8 (H, W, 3)."""

from __future__ import annotations

import cv2
import numpy as np

from dan_core.errors import DanFerError


def as_bgr(frame: np.ndarray) -> np.ndarray:
    """BGR, BGRA or grey (H, W) / (H, W, 1) uint8 -> BGR uint8; 16-bit images are scaled down."""
    if not isinstance(frame, np.ndarray) or frame.ndim not in (2, 3) or frame.size == 0:
        raise DanFerError(f"not an image frame: {getattr(frame, 'shape', type(frame).__name__)}")
    if frame.dtype == np.uint16:
        frame = (frame >> 8).astype(np.uint8)
    elif frame.dtype != np.uint8:
        frame = np.clip(frame, 0, 255).astype(np.uint8)
    if frame.ndim == 2 or frame.shape[2] == 1:
        return cv2.cvtColor(frame.reshape(frame.shape[:2]), cv2.COLOR_GRAY2BGR)
    if frame.shape[2] == 4:
        return cv2.cvtColor(frame, cv2.COLOR_BGRA2BGR)
    if frame.shape[2] != 3:
        raise DanFerError(f"frames need 1, 3 or 4 channels, got {frame.shape[2]}")
    return frame

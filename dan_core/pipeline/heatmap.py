"""Attention heatmaps: the overlay modes (their grammar, order and labels) and the colour map.

The one home of both: ``dan-fer analyze --heatmap``, the drawn frames, the app's mode menu and its
side panel of head tiles all read the modes and the colours from here.

Modes, in the order the app cycles them: ``off``, ``fused`` (mean of the heads), ``head1`` ..
``headK`` (one head, 1-based), ``all`` (fused on the face and every head beside it).
"""

from __future__ import annotations

import cv2
import numpy as np

from dan_core.errors import DanFerError

COLORMAP = cv2.COLORMAP_JET  # low attention blue, high attention red
NAMED_MODES = ("off", "fused", "all")


def heatmap_modes(num_heads: int) -> tuple[str, ...]:
    """All overlay modes in cycling order: off, fused, head1..headK, all."""
    return ("off", "fused", *(f"head{i + 1}" for i in range(num_heads)), "all")


def is_heatmap_mode(mode: str) -> bool:
    """Whether ``mode`` is spelled like a mode at all (head7 is, whatever the model's head count)."""
    return mode in NAMED_MODES or (mode.startswith("head") and mode[4:].isdigit())


def parse_heatmap(mode: str, num_heads: int) -> str:
    """A user's mode (any case; empty means off) checked against the model; DanFerError when unknown."""
    mode = (mode or "off").lower()
    if mode not in heatmap_modes(num_heads):
        raise DanFerError(f"unknown heatmap {mode!r}: use fused, off, all or head1..head{num_heads}")
    return mode


def valid_heatmap_mode(mode: str, num_heads: int, default: str = "fused") -> str:
    """``mode`` when the model has it, else ``default``."""
    return mode if mode in heatmap_modes(num_heads) else default


def next_heatmap_mode(mode: str, num_heads: int) -> str:
    """The mode after ``mode`` (wrapping); an unknown mode (e.g. head7 on a 4-head model) restarts at off."""
    modes = heatmap_modes(num_heads)
    if mode not in modes:
        return modes[0]
    return modes[(modes.index(mode) + 1) % len(modes)]


def heatmap_label(mode: str) -> str:
    """What a menu shows for a mode."""
    if mode.startswith("head"):
        return f"Head {mode[4:]}"
    return {"off": "Off", "fused": "Fused (mean of heads)", "all": "All heads"}.get(mode, mode)


# ----------------------------------------------------------------------------- maps and colours
def select_map(attention: np.ndarray, mode: str) -> np.ndarray:
    """(K, h, w) raw maps -> one (h, w) map: 'fused' (mean over heads) or 'headN' (1-based)."""
    if mode in ("fused", "all"):
        return attention.mean(axis=0)
    k = int(mode[4:]) - 1
    if not 0 <= k < attention.shape[0]:
        raise DanFerError(f"heatmap {mode}: the model has {attention.shape[0]} heads")
    return attention[k]


def normalized_map(att: np.ndarray, size: int) -> np.ndarray:
    """(h, w) raw map -> (size, size) float32 in [0, 1] (min-max, then bicubic upsampling)."""
    att = np.asarray(att, np.float32)
    lo, hi = float(att.min()), float(att.max())
    norm = (att - lo) / (hi - lo) if hi - lo > 1e-12 else np.zeros_like(att)
    return np.clip(cv2.resize(norm, (size, size), interpolation=cv2.INTER_CUBIC), 0.0, 1.0)


def colorize(values: np.ndarray) -> np.ndarray:
    """(H, W) values in [0, 1] -> (H, W, 3) uint8 BGR in the heatmap colours."""
    return cv2.applyColorMap((values * 255).astype(np.uint8), COLORMAP)


def heatmap_image(attention: np.ndarray, size: int, *, mode: str = "fused") -> np.ndarray:
    """A colour (size, size, 3) BGR heatmap of one head, the fused map, or an (h, w) map given directly."""
    att = attention if attention.ndim == 2 else select_map(attention, mode)
    return colorize(normalized_map(att, size))


def head_strip(face, *, opacity: float = 0.5, size: int = 96) -> np.ndarray:
    """A face's aligned crop, then its fused map, then each head's map: (size, (K+2)*size, 3) BGR."""
    crop = np.asarray(face.crop)
    if crop.ndim == 2:
        crop = cv2.cvtColor(crop, cv2.COLOR_GRAY2BGR)
    crop = cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA)
    att = np.asarray(face.attention, dtype=np.float32)  # (K, h, w)
    tiles = [crop]
    for m in (att.mean(axis=0), *att):
        tiles.append(cv2.addWeighted(crop, 1.0 - opacity, heatmap_image(m, size), opacity, 0.0))
    return np.ascontiguousarray(np.hstack(tiles))  # (S, (K+2)*S, 3)

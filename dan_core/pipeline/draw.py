"""Drawing results onto frames with OpenCV, shared by ``dan-fer analyze`` and the desktop app.

Heatmaps (their modes and colours live in heatmap.py): a head's raw attention map (h x w, e.g.
4 x 4) is min-max normalised, upsampled to the aligned crop (S x S) and warped back into the
frame with the inverse of the alignment transform, so it lies on the face the model saw,
rotation included. ``fused`` is the mean over heads.
"""

from __future__ import annotations

import colorsys
import hashlib

import cv2
import numpy as np

from dan_core.pipeline.frames import as_bgr
from dan_core.pipeline.heatmap import colorize, heatmap_image, normalized_map, parse_heatmap, select_map

BGR = tuple[int, int, int]
FONT = cv2.FONT_HERSHEY_SIMPLEX

# Fixed colours for the usual expression names (BGR), so a class looks the same in every view.
KNOWN_COLORS: dict[str, BGR] = {
    "neutral": (190, 190, 190),
    "happiness": (0, 215, 255), "happy": (0, 215, 255),
    "surprise": (0, 140, 255), "surprised": (0, 140, 255),
    "sadness": (220, 120, 40), "sad": (220, 120, 40),
    "anger": (40, 40, 230), "angry": (40, 40, 230),
    "disgust": (60, 170, 60), "disgusted": (60, 170, 60),
    "fear": (180, 80, 170), "fearful": (180, 80, 170),
    "contempt": (150, 150, 30),
}


def class_colors(class_names) -> dict[str, BGR]:
    """BGR colour per class name; unknown names get a stable colour from a hash of the name."""
    out = {}
    for name in class_names:
        key = str(name).lower()
        if key in KNOWN_COLORS:
            out[name] = KNOWN_COLORS[key]
        else:
            hue = int(hashlib.md5(key.encode()).hexdigest()[:4], 16) / 0xFFFF
            r, g, b = colorsys.hsv_to_rgb(hue, 0.65, 0.95)
            out[name] = (int(b * 255), int(g * 255), int(r * 255))
    return out


# ----------------------------------------------------------------------------- heatmaps
def soft_window(size: int, edge: float = 0.12) -> np.ndarray:
    """(size, size) float32: 1 inside, fading to 0 over the outer ``edge`` of the crop (no hard square edge)."""
    ramp = np.clip((np.minimum(np.arange(size), np.arange(size)[::-1]) + 0.5) / max(edge * size, 1.0), 0.0, 1.0)
    ramp = 0.5 - 0.5 * np.cos(np.pi * ramp)  # smooth step
    return np.outer(ramp, ramp).astype(np.float32)


def warp_to_frame(image: np.ndarray, matrix: np.ndarray, frame_size: tuple[int, int]):
    """Warp a crop-space image (S, S[, C]) into the frame, outside the crop 0.

    Returns ((x0, y0, x1, y1), warped ROI) or None when the crop lies outside the frame.
    """
    w, h = frame_size
    s = image.shape[0]
    inv = cv2.invertAffineTransform(matrix)
    corners = np.array([[0, 0, 1], [s, 0, 1], [0, s, 1], [s, s, 1]], np.float32) @ inv.T  # (4, 2) frame pixels
    x0, y0 = np.floor(corners.min(axis=0)).astype(int)
    x1, y1 = np.ceil(corners.max(axis=0)).astype(int)
    x0, y0, x1, y1 = max(int(x0), 0), max(int(y0), 0), min(int(x1), w), min(int(y1), h)
    if x1 <= x0 or y1 <= y0:
        return None
    m = matrix.astype(np.float64).copy()
    m[:, 2] += m[:, :2] @ np.array([x0, y0], np.float64)  # ROI pixel -> crop pixel
    out = cv2.warpAffine(image, m, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                         borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    return (x0, y0, x1, y1), out


def blend_heatmap(frame: np.ndarray, attention: np.ndarray, matrix: np.ndarray, size: int, *, mode: str = "fused",
                  opacity: float = 0.5) -> None:
    """Blend one face's heatmap into ``frame`` in place; stronger attention is drawn more opaque.

    Colour and opacity are made in crop space (S x S) and warped as one 4-channel uint8 image.
    """
    values = normalized_map(select_map(attention, mode), size)
    colour = colorize(values)  # (S, S, 3)
    alpha = opacity * soft_window(size) * (0.35 + 0.65 * values)  # (S, S) in [0, 1]
    bgra = np.dstack([colour, (alpha * 255 + 0.5).astype(np.uint8)])  # (S, S, 4)
    warped = warp_to_frame(bgra, matrix, (frame.shape[1], frame.shape[0]))
    if warped is None:
        return
    (x0, y0, x1, y1), roi_bgra = warped
    a = roi_bgra[:, :, 3].astype(np.float32) * (1.0 / 255.0)
    roi = np.ascontiguousarray(frame[y0:y1, x0:x1])
    frame[y0:y1, x0:x1] = cv2.blendLinear(roi, np.ascontiguousarray(roi_bgra[:, :, :3]), 1.0 - a, a)


# ----------------------------------------------------------------------------- text and bars
SHADOW = 1  # pixels: the text's dark copy, down and right, that keeps it readable on any background


def _text(img: np.ndarray, text: str, org: tuple[int, int], scale: float, color: BGR, thickness: int = 1) -> None:
    """Text with a one-pixel drop shadow: as wide as the text plus ``SHADOW`` (a thicker shadow stuck out to the right:
    "neutrall", "happinesss")."""
    cv2.putText(img, text, (org[0] + SHADOW, org[1] + SHADOW), FONT, scale, (0, 0, 0), thickness, cv2.LINE_AA)
    cv2.putText(img, text, org, FONT, scale, color, thickness, cv2.LINE_AA)


def text_width(text: str, scale: float, thickness: int = 1) -> int:
    """Pixels ``_text`` takes across."""
    return int(cv2.getTextSize(text, FONT, scale, thickness)[0][0]) + SHADOW


def _panel(img: np.ndarray, x0: int, y0: int, x1: int, y1: int, alpha: float = 0.55) -> None:
    h, w = img.shape[:2]
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    if x1 > x0 and y1 > y0:
        img[y0:y1, x0:x1] = (img[y0:y1, x0:x1] * (1 - alpha)).astype(np.uint8)


def _ui_scale(frame_h: int) -> float:
    return float(np.clip(frame_h / 720.0, 0.75, 2.0))


def _side_x(box, width: int, frame_w: int) -> int:
    """Left edge of a panel beside a face box: right of it, or left of it when there is no room."""
    x, _, bw, _ = box
    return x + bw + 6 if x + bw + 6 + width <= frame_w else max(x - 6 - width, 0)


def draw_prob_bars(img: np.ndarray, probs: np.ndarray, class_names, colors: dict[str, BGR], anchor_box, *,
                   scale: float) -> tuple[int, int, int, int]:
    """A panel of one bar per class beside the face box; returns the panel's (x, y, w, h)."""
    h, w = img.shape[:2]
    row = max(int(16 * scale), 9)
    font = 0.42 * scale
    label_w = max(text_width(str(n), font) for n in class_names) + 6
    bar_w = int(70 * scale)
    pct_w = text_width("100%", font)  # the widest percentage, inside the panel
    pw, ph = 4 + label_w + bar_w + 4 + pct_w + 4, row * len(class_names) + 8
    px = _side_x(anchor_box, pw, w)
    py = int(np.clip(anchor_box[1], 0, max(h - ph, 0)))
    _panel(img, px, py, px + pw, py + ph)
    for i, name in enumerate(class_names):
        ty = py + 4 + row * i
        p = float(probs[i])
        _text(img, str(name), (px + 4, ty + row - 4), font, (235, 235, 235))
        bx = px + 4 + label_w
        cv2.rectangle(img, (bx, ty + 3), (bx + bar_w, ty + row - 3), (90, 90, 90), 1)
        cv2.rectangle(img, (bx, ty + 3), (bx + int(round(bar_w * p)), ty + row - 3), colors[name], -1)
        pct = f"{p * 100:.0f}%"
        _text(img, pct, (bx + bar_w + 4 + pct_w - text_width(pct, font), ty + row - 4), font, (235, 235, 235))  # right-aligned
    return px, py, pw, ph


def draw_head_thumbnails(img: np.ndarray, face, anchor: tuple[int, int, int, int], *, opacity: float, scale: float,
                         below: bool = True) -> None:
    """The aligned face once per head with that head's heatmap, in a grid of two columns under ``anchor``
    (the probability panel), or beside the face box when ``below`` is False."""
    h, w = img.shape[:2]
    k = face.attention.shape[0]
    cols = 1 if k == 1 else 2
    rows = -(-k // cols)
    gap = 2
    if below:
        ax, ay, aw, ah = anchor
        t = int(np.clip((aw - gap) // cols, 40, 110 * scale))
        gw, gh = cols * t + (cols - 1) * gap, rows * t + (rows - 1) * gap
        gx = int(np.clip(ax, 0, max(w - gw, 0)))
        gy = ay + ah + gap if ay + ah + gap + gh <= h else max(ay - gap - gh, 0)
    else:
        t = int(np.clip(anchor[3] / rows, 40, 110 * scale))
        gw, gh = cols * t + (cols - 1) * gap, rows * t + (rows - 1) * gap
        gx = _side_x(anchor, gw, w)
        gy = int(np.clip(anchor[1], 0, max(h - gh, 0)))
    small = cv2.resize(face.crop, (t, t), interpolation=cv2.INTER_AREA)
    for i in range(k):
        x0, y0 = gx + (i % cols) * (t + gap), gy + (i // cols) * (t + gap)
        if x0 + t > w or y0 + t > h:
            continue
        thumb = cv2.addWeighted(small, 1 - opacity, heatmap_image(face.attention[i], t), opacity, 0)
        img[y0:y0 + t, x0:x0 + t] = thumb
        _text(img, f"head {i + 1}", (x0 + 3, y0 + int(12 * scale) + 2), 0.38 * scale, (255, 255, 255))


def draw_results(frame_bgr: np.ndarray, result, class_names, *, heatmap: str = "fused", opacity: float = 0.5,
                 landmarks: bool = False, selected_id: int | None = None, bars: bool = True) -> np.ndarray:
    """A new annotated BGR frame: heatmaps, boxes, IDs, labels and probability bars of ``result``."""
    img = as_bgr(frame_bgr).copy()
    colors = class_colors(class_names)
    scale = _ui_scale(img.shape[0])
    heads = result.faces[0].attention.shape[0] if result.faces else 1
    mode = parse_heatmap(heatmap, heads)
    size = result.faces[0].crop.shape[0] if result.faces else 0
    if mode != "off":
        for face in result.faces:
            blend_heatmap(img, face.attention, face.matrix, size, mode="fused" if mode == "all" else mode, opacity=opacity)
    for face in result.faces:
        color = colors.get(face.dominant, (255, 255, 255))
        x, y, bw, bh = face.box
        selected = selected_id is not None and face.face_id == selected_id
        thick = max(int(round(2 * scale)), 1) + (2 if selected else 0)
        if landmarks:
            pts = np.round(face.landmarks).astype(int)
            ok = (pts[:, 0] >= 0) & (pts[:, 0] < img.shape[1]) & (pts[:, 1] >= 0) & (pts[:, 1] < img.shape[0])
            img[pts[ok, 1], pts[ok, 0]] = (255, 255, 200)
        cv2.rectangle(img, (x, y), (x + bw, y + bh), color, thick, cv2.LINE_AA)
        label = f"#{face.face_id} {face.dominant} {face.confidence * 100:.0f}%"
        font = 0.55 * scale
        (tw, th), base = cv2.getTextSize(label, FONT, font, 1)
        ly = y - 6 if y - th - base - 6 >= 0 else y + bh + th + 6
        _panel(img, x - 1, ly - th - 4, x + tw + 6, ly + base + 1, alpha=0.6)
        _text(img, label, (x + 2, ly), font, color)
        panel = draw_prob_bars(img, face.probs, class_names, colors, face.box, scale=scale) if bars else None
        if mode == "all":
            draw_head_thumbnails(img, face, panel or face.box, opacity=opacity, scale=scale, below=panel is not None)
    return img

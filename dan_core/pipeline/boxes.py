"""Face boxes: ``(x, y, w, h)`` in frame pixels, their overlap, and which face a viewer follows."""

from __future__ import annotations

from collections.abc import Sequence

Box = tuple[int, int, int, int]  # x, y, w, h


def iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two (x, y, w, h) boxes (ints, floats or arrays of 4); 0 when both are empty."""
    x0, y0 = max(a[0], b[0]), max(a[1], b[1])
    x1, y1 = min(a[0] + a[2], b[0] + b[2]), min(a[1] + a[3], b[1] + b[3])
    inter = max(0.0, x1 - x0) * max(0.0, y1 - y0)
    union = a[2] * a[3] + b[2] * b[3] - inter
    return float(inter / union) if union > 0 else 0.0


def selected_or_largest(faces: Sequence[tuple[int, Sequence[float]]], selected_id: int | None) -> int | None:
    """Which face a viewer follows: ``selected_id`` while one of ``faces`` ((face id, box) pairs) has it, else the
    face with the largest box; None without faces. The side panel, the timeline and the drawing all follow it."""
    if any(face_id == selected_id for face_id, _ in faces):
        return selected_id
    if not faces:
        return None
    return max(faces, key=lambda f: f[1][2] * f[1][3])[0]

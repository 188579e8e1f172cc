"""A face photo turned in 3-D, for checking the head pose against a known rotation (tests only).

MediaPipe's 478 landmarks of a frontal photo, with their depth, make a textured mesh (Delaunay
triangles of the landmarks); ``render`` turns that mesh by a known yaw, pitch and roll about the
face's centre and draws it back into the photo (orthographic projection, far triangles first, each
triangle's texture moved by its own affine map). What lies under the face in the photo is blurred
first, so that the face's old outline does not show beside the turned one.
"""

from __future__ import annotations

import math

import cv2
import numpy as np


def rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """(3, 3) rotation in a frame with x to the picture's right, y up and z towards the viewer.

    Yaw > 0 turns the face towards the picture's right (the person's own left), pitch > 0 up, roll > 0
    tilts the top of the head towards the picture's right (the person's own left shoulder)."""
    a, b, c = (math.radians(v) for v in (yaw, pitch, roll))
    ry = np.array([[math.cos(a), 0, math.sin(a)], [0, 1, 0], [-math.sin(a), 0, math.cos(a)]])
    rx = np.array([[1, 0, 0], [0, math.cos(b), math.sin(b)], [0, -math.sin(b), math.cos(b)]])  # the nose goes up
    rz = np.array([[math.cos(c), math.sin(c), 0], [-math.sin(c), math.cos(c), 0], [0, 0, 1]])  # clockwise in the picture
    return ry @ rx @ rz


def triangles(points: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(T, 3) indices of the Delaunay triangles of (N, 2) points inside a (w, h) picture."""
    w, h = size
    sub = cv2.Subdiv2D((0, 0, w, h))
    for x, y in points:
        sub.insert((float(np.clip(x, 0, w - 1)), float(np.clip(y, 0, h - 1))))
    index = {(round(float(np.clip(x, 0, w - 1)), 2), round(float(np.clip(y, 0, h - 1)), 2)): i for i, (x, y) in enumerate(points)}
    out = []
    for t in sub.getTriangleList():
        corners = [index.get((round(float(t[k]), 2), round(float(t[k + 1]), 2))) for k in (0, 2, 4)]
        if None not in corners:
            out.append(corners)
    return np.array(out, np.int64)


def _draw_triangle(dst: np.ndarray, src: np.ndarray, tri_src: np.ndarray, tri_dst: np.ndarray) -> None:
    x, y, w, h = cv2.boundingRect(tri_dst.astype(np.float32))
    if w <= 0 or h <= 0:
        return
    m = cv2.getAffineTransform(tri_src.astype(np.float32), (tri_dst - [x, y]).astype(np.float32))
    patch = cv2.warpAffine(src, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    mask = np.zeros((h, w), np.uint8)
    cv2.fillConvexPoly(mask, np.round(tri_dst - [x, y]).astype(np.int32), 255, cv2.LINE_AA)
    x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + w, dst.shape[1]), min(y + h, dst.shape[0])
    if x1 <= x0 or y1 <= y0:
        return
    region, patch, mask = dst[y0:y1, x0:x1], patch[y0 - y:y1 - y, x0 - x:x1 - x], mask[y0 - y:y1 - y, x0 - x:x1 - x, None] / 255.0
    dst[y0:y1, x0:x1] = (region * (1 - mask) + patch * mask).astype(np.uint8)


def render(image: np.ndarray, landmarks: np.ndarray, yaw: float = 0.0, pitch: float = 0.0, roll: float = 0.0) -> np.ndarray:
    """``image`` with its face turned. ``landmarks``: (478, 3) pixels (x right, y down, z: smaller is nearer, as
    MediaPipe gives it, scaled to pixels)."""
    h, w = image.shape[:2]
    pts = np.asarray(landmarks, np.float64)
    space = np.stack([pts[:, 0], -pts[:, 1], -pts[:, 2]], axis=1)  # x right, y up, z towards the viewer
    centre = space.mean(axis=0)
    turned = (space - centre) @ rotation(yaw, pitch, roll).T + centre
    xy = np.stack([turned[:, 0], -turned[:, 1]], axis=1)  # back to picture pixels (orthographic)
    tris = triangles(pts[:, :2], (w, h))
    out = image.copy()
    hull = cv2.convexHull(np.round(pts[:, :2]).astype(np.int32))
    mask = np.zeros((h, w), np.uint8)
    cv2.fillConvexPoly(mask, hull, 255)
    mask = cv2.dilate(mask, np.ones((9, 9), np.uint8))
    blurred = cv2.GaussianBlur(image, (0, 0), 25)
    out[mask > 0] = blurred[mask > 0]
    depth = turned[tris].mean(axis=1)[:, 2]
    for t in tris[np.argsort(depth)]:  # far triangles first
        d = xy[t]
        if (d[1, 0] - d[0, 0]) * (d[2, 1] - d[0, 1]) - (d[1, 1] - d[0, 1]) * (d[2, 0] - d[0, 0]) == 0:
            continue
        _draw_triangle(out, image, pts[t, :2], d)
    return out

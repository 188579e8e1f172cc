"""A second look at a still for the faces MediaPipe's landmarker passed over.

The FaceLandmarker finds a face only when its own detector's box leads its landmark network to a
face it is sure of. In a group photo that fails for faces its detector does see: a man looking down
(detector score 0.75 on the whole photo, no landmarks) or a woman cut off by the top edge (0.22 in
a tile). ``SecondLook`` runs the bundle's own face detector (``face_detector.tflite`` inside
``face_landmarker.task``) on the whole still and on 2 x 2 tiles of a large one, keeps detections
scoring at least ``--min-face-confidence``, and for each one no face was found at, runs the landmarker
again on a square crop around it (twice its size, black beyond the picture's edge, so that a face
cut off by the edge still has room). Stills only: in a video the landmarker's own tracking decides,
and this would cost each frame a detector and a crop (measured on the shared video: no face missed).
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable

import numpy as np

from dan_core.pipeline.boxes import iou

DETECTOR_FILE = "face_detector.tflite"  # inside face_landmarker.task (a zip)
CROP_SCALE = 2.0  # the crop's side, in detection box sides
TILE = 0.7  # a tile's side, as a share of the still's (as the landmarker's own tiles)

Box = tuple[int, int, int, int]


def detector_model(task_bytes: bytes) -> bytes:
    """The face detector's model from a face_landmarker.task's bytes."""
    with zipfile.ZipFile(io.BytesIO(task_bytes)) as bundle:
        return bundle.read(DETECTOR_FILE)


def _covered(box: Box, found: list[Box]) -> bool:
    """Whether a face was already found at ``box`` (overlapping it, or holding its centre)."""
    cx, cy = box[0] + box[2] / 2, box[1] + box[3] / 2
    return any(iou(box, f) > 0.2 or (f[0] <= cx <= f[0] + f[2] and f[1] <= cy <= f[1] + f[3]) for f in found)


def square_crop(rgb: np.ndarray, box: Box) -> tuple[np.ndarray, tuple[int, int]]:
    """A square of ``CROP_SCALE`` times the box's larger side around its centre, black beyond the picture; and where its
    top-left corner lies in the picture (may be negative)."""
    h, w = rgb.shape[:2]
    side = int(round(CROP_SCALE * max(box[2], box[3])))
    x0, y0 = int(round(box[0] + box[2] / 2 - side / 2)), int(round(box[1] + box[3] / 2 - side / 2))
    out = np.zeros((side, side, 3), np.uint8)
    sx0, sy0, sx1, sy1 = max(x0, 0), max(y0, 0), min(x0 + side, w), min(y0 + side, h)
    if sx1 > sx0 and sy1 > sy0:
        out[sy0 - y0:sy1 - y0, sx0 - x0:sx1 - x0] = rgb[sy0:sy1, sx0:sx1]
    return out, (x0, y0)


class SecondLook:
    """The detector's candidates on a still (``candidates``) and the landmarker's faces around those not yet found
    (``look``)."""

    def __init__(self, task_bytes: bytes, min_confidence: float) -> None:
        import mediapipe as mp
        from mediapipe.tasks.python import vision
        from mediapipe.tasks.python.core.base_options import BaseOptions

        from dan_core.pipeline.landmarks import captured_stderr

        self._mp = mp
        options = vision.FaceDetectorOptions(base_options=BaseOptions(model_asset_buffer=detector_model(task_bytes)),
                                             running_mode=vision.RunningMode.IMAGE,
                                             min_detection_confidence=float(min_confidence))
        with captured_stderr():
            self._detector = vision.FaceDetector.create_from_options(options)

    def _detect(self, rgb: np.ndarray, offset: tuple[int, int]) -> list[tuple[Box, float]]:
        image = self._mp.Image(image_format=self._mp.ImageFormat.SRGB, data=np.ascontiguousarray(rgb))
        found = []
        for d in self._detector.detect(image).detections:
            b = d.bounding_box
            found.append(((b.origin_x + offset[0], b.origin_y + offset[1], b.width, b.height), float(d.categories[0].score)))
        return found

    def candidates(self, rgb: np.ndarray, *, tiles: bool) -> list[tuple[Box, float]]:
        """Detections on the whole still and, with ``tiles``, on its 2 x 2 tiles; the best first, repeats merged."""
        h, w = rgb.shape[:2]
        found = self._detect(rgb, (0, 0))
        if tiles:
            th, tw = int(h * TILE), int(w * TILE)
            for y0 in (0, h - th):
                for x0 in (0, w - tw):
                    found += self._detect(rgb[y0:y0 + th, x0:x0 + tw], (x0, y0))
        kept: list[tuple[Box, float]] = []
        for box, score in sorted(found, key=lambda bs: -bs[1]):
            if all(iou(box, k[0]) <= 0.3 for k in kept):
                kept.append((box, score))
        return kept

    def look(self, rgb: np.ndarray, found: list[Box], landmarks: Callable, *, tiles: bool, room: int) -> list:
        """Faces (``landmarks(crop)`` -> DetectedFace list, in crop pixels) found around the candidates no face of
        ``found`` covers, in the still's pixels; at most ``room`` of them."""
        from dan_core.pipeline.landmarks import DetectedFace, landmarks_box

        h, w = rgb.shape[:2]
        added: list = []
        for box, _ in self.candidates(rgb, tiles=tiles):
            if len(added) >= room:
                break
            if _covered(box, found + [f.box for f in added]):
                continue
            crop, (x0, y0) = square_crop(rgb, box)
            centre = np.array([crop.shape[1] / 2, crop.shape[0] / 2], np.float32)
            # the face nearest the crop's centre (a face cut off by the edge lies off its detection box)
            for face in sorted(landmarks(crop), key=lambda f: float(np.linalg.norm(f.landmarks.mean(axis=0) - centre))):
                pts = face.landmarks + np.array([x0, y0], np.float32)
                new = landmarks_box(pts, w, h)
                if new[2] > 0 and new[3] > 0 and not _covered(new, found + [f.box for f in added]):
                    added.append(DetectedFace(pts, new, face.matrix, face.blendshapes))
                    break
        return added

    def close(self) -> None:
        if self._detector is not None:
            self._detector.close()
            self._detector = None

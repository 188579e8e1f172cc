"""What a face gives besides its class probabilities: head pose, MediaPipe's blendshapes, valence, a quality flag.

Each is a plain function of what the pipeline already has, declared here once:

- ``head_pose(matrix)``: yaw, pitch and roll in degrees from MediaPipe's facial transformation matrix
  (the canonical face model -> camera space). Yaw > 0: the person turns their head to their own left
  (the nose moves to the right of the picture); pitch > 0: they look up; roll > 0: the head tilts
  towards their own left shoulder (clockwise in the picture). All 0 for a face looking straight into the camera.
- ``BLENDSHAPE_NAMES``: MediaPipe's 52 blendshape coefficients (0..1), in its order and with its names.
  They are *not* FACS action units (the README's table gives the approximate AU each one relates to).
- ``valence(probs, class_names)``: FaceReader's definition on DAN's probabilities: happiness minus the
  strongest of sadness, anger, fear and disgust; surprise and contempt take no part (-1..1).
- ``quality(...)``: ``ok``, or the reasons a face's numbers deserve less trust, joined by ``+``:
  ``small`` (the face box's shorter side under ``SMALL_FACE_PX``), ``pose`` (|yaw| over ``MAX_YAW_DEG``
  or |pitch| over ``MAX_PITCH_DEG``), ``edge`` (over ``MAX_OUTSIDE`` of its landmarks outside the frame:
  the face is cut off and those points are guessed).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

BLENDSHAPE_NAMES: tuple[str, ...] = (
    "_neutral", "browDownLeft", "browDownRight", "browInnerUp", "browOuterUpLeft", "browOuterUpRight", "cheekPuff",
    "cheekSquintLeft", "cheekSquintRight", "eyeBlinkLeft", "eyeBlinkRight", "eyeLookDownLeft", "eyeLookDownRight",
    "eyeLookInLeft", "eyeLookInRight", "eyeLookOutLeft", "eyeLookOutRight", "eyeLookUpLeft", "eyeLookUpRight",
    "eyeSquintLeft", "eyeSquintRight", "eyeWideLeft", "eyeWideRight", "jawForward", "jawLeft", "jawOpen", "jawRight",
    "mouthClose", "mouthDimpleLeft", "mouthDimpleRight", "mouthFrownLeft", "mouthFrownRight", "mouthFunnel", "mouthLeft",
    "mouthLowerDownLeft", "mouthLowerDownRight", "mouthPressLeft", "mouthPressRight", "mouthPucker", "mouthRight",
    "mouthRollLower", "mouthRollUpper", "mouthShrugLower", "mouthShrugUpper", "mouthSmileLeft", "mouthSmileRight",
    "mouthStretchLeft", "mouthStretchRight", "mouthUpperUpLeft", "mouthUpperUpRight", "noseSneerLeft", "noseSneerRight",
)  # the order of face_blendshapes.tflite in face_landmarker.task (a test compares it with MediaPipe's own names)

# FaceReader's valence: the positive expression against the strongest negative one; names as datasets spell them
POSITIVE = ("happiness", "happy")
NEGATIVE = ("sadness", "sad", "anger", "angry", "fear", "fearful", "disgust", "disgusted")

SMALL_FACE_PX = 48  # FER2013's faces are 48 x 48 pixels: below that the model sees more upsampling than it was trained on
MAX_YAW_DEG = 45.0  # beyond these the face's far side is hidden and the training faces (mostly frontal) rarely go
MAX_PITCH_DEG = 30.0
MAX_OUTSIDE = 0.1  # share of the 478 landmarks outside the frame


@dataclass(frozen=True)
class HeadPose:
    yaw: float  # degrees, > 0: turned to the person's own left
    pitch: float  # degrees, > 0: looking up
    roll: float  # degrees, > 0: tilted towards the person's own left shoulder


def head_pose(matrix: np.ndarray | None) -> HeadPose | None:
    """Yaw, pitch, roll (degrees) of a (4, 4) facial transformation matrix; None without one.

    The rotation R (upper 3 x 3) is split as R = Ry(a) Rx(b) Rz(c) (yaw about the vertical axis, then pitch,
    then roll about the line of sight), the usual order for heads; the signs are turned into the person's
    own directions of the module docstring (MediaPipe's camera space: x right, y up, z towards the viewer).
    """
    if matrix is None:
        return None
    r = np.asarray(matrix, np.float64)[:3, :3]
    if not np.all(np.isfinite(r)):
        return None
    yaw = math.degrees(math.atan2(r[0, 2], r[2, 2]))
    pitch = math.degrees(math.asin(float(np.clip(-r[1, 2], -1.0, 1.0))))
    roll = math.degrees(math.atan2(r[1, 0], r[1, 1]))
    return HeadPose(yaw, -pitch, -roll)


def valence_weights(class_names: Sequence[str]) -> tuple[int | None, tuple[int, ...]]:
    """(index of the positive class, indices of the negative classes) of a model's classes; None: no positive class."""
    lower = [str(c).lower() for c in class_names]
    positive = next((i for i, c in enumerate(lower) if c in POSITIVE), None)
    return positive, tuple(i for i, c in enumerate(lower) if c in NEGATIVE)


def valence(probs: np.ndarray, class_names: Sequence[str]) -> float:
    """happiness - max(sadness, anger, fear, disgust) of one face's probabilities; NaN when the model has no happiness."""
    positive, negative = valence_weights(class_names)
    if positive is None:
        return float("nan")
    p = np.asarray(probs, np.float64).ravel()
    return float(p[positive] - (max(p[i] for i in negative) if negative else 0.0))


def quality(box: Sequence[int], landmarks: np.ndarray, frame_size: tuple[int, int], pose: HeadPose | None) -> str:
    """``ok``, or the reasons joined by ``+`` (``small``, ``pose``, ``edge``): see the module docstring."""
    flags = []
    if min(box[2], box[3]) < SMALL_FACE_PX:
        flags.append("small")
    if pose is not None and (abs(pose.yaw) > MAX_YAW_DEG or abs(pose.pitch) > MAX_PITCH_DEG):
        flags.append("pose")
    w, h = frame_size
    pts = np.asarray(landmarks, np.float32)
    if len(pts):
        outside = (pts[:, 0] < 0) | (pts[:, 0] >= w) | (pts[:, 1] < 0) | (pts[:, 1] >= h)
        if float(outside.mean()) > MAX_OUTSIDE:
            flags.append("edge")
    return "+".join(flags) or "ok"


QUALITY_FLAGS = ("ok", "small", "pose", "edge")  # what ``quality`` may say (the reader checks each part)

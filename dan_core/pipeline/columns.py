"""The timeline CSV's columns, each declared once: its name, how a face's value is written, how it is read back.

A row is ``LEADING``, then one probability column per class, then ``TRAILING``, then (with
``--blendshapes``) one column per MediaPipe blendshape (``BLENDSHAPES``). The writer
(``timeline.TimelineWriter``) and the reader (``timeline.load_timeline``) both go through this table,
so a new column is one ``Column`` here. A column added after files were recorded is declared with
``required=False``: files without it still read (it is then absent from what is read back).

Every processed frame has at least one row: a frame without a face is one row whose ``faces`` is 0
and whose face columns are empty (``frame_row``). A measure a face does not have (no head pose, a
model without happiness for the valence) is an empty field, read back as NaN.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from dan_core.pipeline.csvrows import usable_time
from dan_core.pipeline.measures import BLENDSHAPE_NAMES, QUALITY_FLAGS

_INT_LIMIT = 2**53  # frame numbers and pixels; anything beyond is not a value we wrote


def _time(text: str, classes: Sequence[str]) -> float:
    v = float(text)
    if not usable_time(v):  # from the start of the recording: never negative, never days beyond it
        raise ValueError(text)
    return v


def _count(text: str, classes: Sequence[str]) -> int:
    v = int(text)
    if not 0 <= v < _INT_LIMIT:
        raise ValueError(text)
    return v


def _pixel(text: str, classes: Sequence[str]) -> int:
    v = int(text)  # may be negative: a face partly out of the picture
    if not -_INT_LIMIT < v < _INT_LIMIT:
        raise ValueError(text)
    return v


def probability(text: str, classes: Sequence[str] = ()) -> float:
    v = float(text)
    if not math.isfinite(v) or not -1e-3 <= v <= 1.001:
        raise ValueError(text)
    return v


def _class_name(text: str, classes: Sequence[str]) -> str:
    if text not in classes:
        raise ValueError(text)
    return text


def _number(low: float, high: float) -> Callable[[str, Sequence[str]], float]:
    """A measure in [low, high]; empty: the face has none (NaN)."""
    def read(text: str, classes: Sequence[str]) -> float:
        if text == "":
            return math.nan
        v = float(text)
        if not math.isfinite(v) or not low <= v <= high:
            raise ValueError(text)
        return v
    return read


def _quality(text: str, classes: Sequence[str]) -> str:
    if not text or any(part not in QUALITY_FLAGS for part in text.split("+")):
        raise ValueError(text)
    return text


def _optional(value: float | None, digits: int) -> str:
    return "" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def _pose(face, axis: str) -> str:
    pose = getattr(face, "pose", None)
    return _optional(None if pose is None else getattr(pose, axis), 2)


def _blendshape(i: int) -> Callable:
    def write(r, f) -> str:
        shapes = getattr(f, "blendshapes", None)
        return "" if shapes is None else f"{float(shapes[i]):.4f}"
    return write


@dataclass(frozen=True)
class Column:
    name: str
    write: Callable  # (FrameResult, FaceResult) -> the value written
    read: Callable[[str, Sequence[str]], object]  # (text, class names) -> value; ValueError when it is not one we write
    dtype: type = np.float64  # of the column read back
    required: bool = True  # False for a column added later: older files without it still read


LEADING: tuple[Column, ...] = (
    Column("time_s", lambda r, f: f"{r.time_s:.3f}", _time),
    Column("frame", lambda r, f: r.index, _count, np.int64),
    Column("face_id", lambda r, f: f.face_id, _count, np.int64),
    Column("x", lambda r, f: f.box[0], _pixel, np.int64),
    Column("y", lambda r, f: f.box[1], _pixel, np.int64),
    Column("w", lambda r, f: f.box[2], _count, np.int64),
    Column("h", lambda r, f: f.box[3], _count, np.int64),
)
TRAILING: tuple[Column, ...] = (
    Column("dominant", lambda r, f: f.dominant, _class_name, object),
    Column("confidence", lambda r, f: f"{f.confidence:.4f}", probability),
    # added with frame accounting, head pose and valence (files from before have none of these)
    Column("faces", lambda r, f: len(r.faces), _count, np.int64, required=False),  # faces in this frame (0: no face)
    Column("detection", lambda r, f: getattr(f, "quality", "ok"), _quality, object, required=False),  # measures.quality
    Column("valence", lambda r, f: _optional(getattr(f, "valence", None), 4), _number(-1.001, 1.001), required=False),
    Column("yaw", lambda r, f: _pose(f, "yaw"), _number(-180, 180), required=False),  # degrees, measures.head_pose
    Column("pitch", lambda r, f: _pose(f, "pitch"), _number(-90, 90), required=False),
    Column("roll", lambda r, f: _pose(f, "roll"), _number(-180, 180), required=False),
)
# MediaPipe's blendshape coefficients (0..1), written with --blendshapes, after everything else
BLENDSHAPES: tuple[Column, ...] = tuple(Column(name, _blendshape(i), _number(-1e-3, 1.001), required=False)
                                        for i, name in enumerate(BLENDSHAPE_NAMES))
FIXED_COLUMNS = tuple(c.name for c in LEADING)
FACE_COLUMNS = frozenset(c.name for c in (*LEADING[2:], *TRAILING) if c.name != "faces")  # empty on a frame without a face
MEASURES = ("valence", "yaw", "pitch", "roll", *BLENDSHAPE_NAMES)  # per-face numbers besides the class probabilities
CLASS_COLUMN = Column("<class>", None, probability)  # each class's probability
_BY_NAME = {c.name: c for c in (*LEADING, *TRAILING, *BLENDSHAPES)}


def header(class_names: Sequence[str], *, blendshapes: bool = False) -> list[str]:
    return [*FIXED_COLUMNS, *class_names, *(c.name for c in TRAILING), *(c.name for c in BLENDSHAPES if blendshapes)]


def row(result, face, *, blendshapes: bool = False) -> list:
    """One face's row of a FrameResult, in ``header`` order."""
    probs = [f"{float(p):.4f}" for p in np.asarray(face.probs).ravel()]
    return [*(c.write(result, face) for c in LEADING), *probs, *(c.write(result, face) for c in TRAILING),
            *(c.write(result, face) for c in BLENDSHAPES if blendshapes)]


def frame_row(result, class_names: Sequence[str], *, blendshapes: bool = False) -> list:
    """The row of a frame without a face: its time and frame, ``faces`` 0, every face column empty."""
    values = {"time_s": LEADING[0].write(result, None), "frame": result.index, "faces": 0}
    return [values.get(name, "") for name in header(class_names, blendshapes=blendshapes)]


def classes_of(head: Sequence[str]) -> list[str] | None:
    """The class names of a timeline header, or None when it is not one of ours (a required column missing,
    the columns out of order, no class, a column twice)."""
    head = list(head)
    classes = [h for h in head if h not in _BY_NAME]
    present = lambda cols: [c.name for c in cols if c.name in head]  # noqa: E731
    if any(c.required and c.name not in head for c in _BY_NAME.values()) or len(set(head)) != len(head):
        return None
    if not classes or not all(c.strip() for c in classes) or \
            head != [*present(LEADING), *classes, *present(TRAILING), *present(BLENDSHAPES)]:
        return None
    return classes


def column(name: str) -> Column:
    """The column called ``name``; any other name in a header of ours is a class."""
    return _BY_NAME.get(name, CLASS_COLUMN)

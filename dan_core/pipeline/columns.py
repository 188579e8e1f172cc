"""The timeline CSV's columns, each declared once: its name, how a face's value is written, how it is read back.

A row is ``LEADING``, then one probability column per class, then ``TRAILING``. The writer
(``timeline.TimelineWriter``) and the reader (``timeline.load_timeline``) both go through this table,
so a new column is one ``Column`` here. A column added after files were recorded is declared with
``required=False``: files without it still read (it is then absent from what is read back).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from dan_core.pipeline.csvrows import usable_time

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
)
FIXED_COLUMNS = tuple(c.name for c in LEADING)
CLASS_COLUMN = Column("<class>", None, probability)  # each class's probability
_BY_NAME = {c.name: c for c in (*LEADING, *TRAILING)}


def header(class_names: Sequence[str]) -> list[str]:
    return [*FIXED_COLUMNS, *class_names, *(c.name for c in TRAILING)]


def row(result, face) -> list:
    """One face's row of a FrameResult, in ``header`` order."""
    probs = [f"{float(p):.4f}" for p in np.asarray(face.probs).ravel()]
    return [*(c.write(result, face) for c in LEADING), *probs, *(c.write(result, face) for c in TRAILING)]


def classes_of(head: Sequence[str]) -> list[str] | None:
    """The class names of a timeline header, or None when it is not one of ours (a required column missing,
    the columns out of order, no class, a column twice)."""
    head = list(head)
    classes = [h for h in head if h not in _BY_NAME]
    present = lambda cols: [c.name for c in cols if c.name in head]  # noqa: E731
    if any(c.required and c.name not in head for c in _BY_NAME.values()) or len(set(head)) != len(head):
        return None
    if not classes or not all(c.strip() for c in classes) or head != [*present(LEADING), *classes, *present(TRAILING)]:
        return None
    return classes


def column(name: str) -> Column:
    """The column called ``name``; any other name in a header of ours is a class."""
    return _BY_NAME.get(name, CLASS_COLUMN)

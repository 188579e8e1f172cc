"""Reading back the CSV files our writers flush as they go (timelines, events): a writer killed
mid-line leaves a last line with no newline, which is dropped; anything unreadable is one
DanFerError line naming the file."""

from __future__ import annotations

import csv
import math
import os
from pathlib import Path

from dan_core.errors import DanFerError


def read_whole_rows(path: str | os.PathLike, what: str, *, keep_lone_line: bool = False) -> list[list[str]]:
    """The rows of ``path`` without a torn last line. ``what`` names the format in messages
    ("a dan-fer timeline CSV"); ``keep_lone_line`` keeps a file's only line even without its newline."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise DanFerError(f"cannot read {path}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise DanFerError(f"{path} is not {what} (not UTF-8 text)") from exc
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith(("\n", "\r")) and (len(lines) > 1 or not keep_lone_line):
        lines = lines[:-1]  # cut off by a crash
    try:
        return list(csv.reader(lines))
    except csv.Error as exc:
        raise DanFerError(f"{path} is not {what} ({exc})") from exc


MAX_TIME_S = 1e6  # 11.6 days: a time beyond it (or not finite) in a recording is damage, not data


def usable_time(t: float, *, negative: bool = False) -> bool:
    """A time a timeline or marker may hold: finite, within ``MAX_TIME_S``, and not negative unless ``negative``."""
    return math.isfinite(t) and abs(t) <= MAX_TIME_S and (negative or t >= 0.0)

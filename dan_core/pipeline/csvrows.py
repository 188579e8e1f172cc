"""The CSV files our writers flush as they go (timelines, events): written in whole lines, read back whole.

``WholeLineFile`` writes each batch of lines in one unbuffered write and cuts the file back to its
last whole line when the disk refuses, so a crash or a full disk never leaves half a line.
``read_whole_rows`` reads such a file back: a writer killed mid-line leaves a last line with no
newline, which is dropped; anything unreadable is one DanFerError line naming the file.
"""

from __future__ import annotations

import csv
import io
import math
import os
from collections.abc import Sequence
from pathlib import Path

from dan_core.errors import DanFerError


def csv_line(fields: Sequence) -> str:
    """One CSV row as text, with its newline."""
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow(fields)
    return buf.getvalue()


class WholeLineFile:
    """A new file written in whole lines, each ``write`` on disk at once (no buffer in between).

    Opening is one DanFerError line: the file exists (and ``force`` is off), or cannot be created.
    """

    def __init__(self, path: str | os.PathLike, *, force: bool = False) -> None:
        self.path = Path(path)
        try:
            self._f = open(self.path, "wb" if force else "xb", buffering=0)
        except FileExistsError as exc:
            raise DanFerError(f"{self.path} exists; pass --force to overwrite it") from exc
        except OSError as exc:
            raise DanFerError(f"cannot write {self.path}: {exc.strerror or exc}") from exc
        self.size = 0  # bytes of whole lines on disk

    def write(self, lines: Sequence[str]) -> None:
        """One write(2) for all ``lines`` (it loops only on a short write); on OSError the file is cut back to
        its last whole line (a full disk allows shrinking) and the error raised."""
        data = "".join(lines).encode("utf-8")
        view = memoryview(data)
        try:
            while view:
                n = self._f.write(view)
                view = view[n or 0:]
        except OSError:
            try:
                os.ftruncate(self._f.fileno(), self.size)
            except OSError:
                pass
            raise
        self.size += len(data)

    def close(self) -> None:
        self._f.close()


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

"""The emotion timeline: one CSV row per face per processed frame (one row for a frame without a face), plus a JSON sidecar.

Columns: time_s, frame, face_id, x, y, w, h, <one probability column per class>, dominant, confidence,
faces, detection, valence, yaw, pitch, roll[, MediaPipe's 52 blendshapes] (declared once, in ``columns``).
Rows are written as whole lines in one unbuffered write per flush, at least once a second (a
timer thread flushes even when no frame arrives), so a crash or ``kill -9`` loses at most the
last second and never leaves half a line. The sidecar ``<csv>.json`` holds the model, class
names, source, start time, fps and software version; it is rewritten with the totals on close.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from dan_core import __version__
from dan_core.errors import DanFerError
from dan_core.paths import check_writable
from dan_core.pipeline import columns
from dan_core.pipeline.columns import FIXED_COLUMNS  # noqa: F401 (the timeline's readers take it from here)
from dan_core.pipeline.csvrows import WholeLineFile, csv_line, read_whole_rows


def sidecar_path(csv_path: str | os.PathLike) -> Path:
    p = Path(csv_path)
    return p.with_name(p.name + ".json")


class TimelineWriter:
    def __init__(self, path: str | os.PathLike, class_names, *, meta: dict | None = None, force: bool = False,
                 flush_interval: float = 1.0, blendshapes: bool = False) -> None:
        self.path = Path(path)
        self.class_names = tuple(class_names)
        self.blendshapes = blendshapes  # the 52 blendshape columns (columns.BLENDSHAPES)
        self.meta_path = sidecar_path(self.path)
        check_writable(self.path, force=force, what="CSV")
        if self.meta_path.exists() and not force:
            raise DanFerError(f"{self.meta_path} exists; pass --force to overwrite it")
        self._f = WholeLineFile(self.path, force=force)
        self.rows = 0  # rows accepted by write()
        self.rows_written = 0  # whole rows on disk
        self.frames = 0
        self.error: DanFerError | None = None  # the first write that failed: the writer stops there
        self._reported = False  # whether a caller has been given self.error already
        self.started = datetime.now(timezone.utc).astimezone().isoformat(timespec="seconds")
        self.meta = {
            "csv": self.path.name, "software": "dan-fer", "version": __version__, "started": self.started,
            "class_names": list(self.class_names), **(meta or {}),
        }
        self._lock = threading.Lock()
        self._pending: list[str] = []
        self._closed = False
        try:
            self._f.write([csv_line(columns.header(self.class_names, blendshapes=blendshapes))])
            self._write_meta()
        except (OSError, DanFerError) as exc:  # not even the header fits: leave nothing behind
            self._f.close()
            self.path.unlink(missing_ok=True)
            if isinstance(exc, DanFerError):
                raise
            raise DanFerError(f"cannot write {self.path}: {exc.strerror or exc}") from exc
        self._interval = flush_interval
        self._stop = threading.Event()
        self._timer = threading.Thread(target=self._flush_loop, name="timeline-flush", daemon=True)
        self._timer.start()

    def _write_meta(self, **extra) -> None:
        self.meta.update(extra)
        tmp = self.meta_path.with_name(self.meta_path.name + ".tmp")
        try:
            tmp.write_text(json.dumps(self.meta, indent=1) + "\n", encoding="utf-8")
            os.replace(tmp, self.meta_path)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise DanFerError(f"cannot write {self.meta_path}: {exc.strerror or exc}") from exc

    def _report(self) -> DanFerError:
        assert self.error is not None
        self._reported = True
        return self.error

    def write(self, result) -> None:
        """Queue one row per face of a FrameResult (a frame without a face: one row with ``faces`` 0); flushed by the
        timer (at most one second later).

        Raises the flush's DanFerError once a write to the file has failed (the disk is full ...).
        """
        b = self.blendshapes
        lines = [csv_line(columns.row(result, f, blendshapes=b)) for f in result.faces] or \
            [csv_line(columns.frame_row(result, self.class_names, blendshapes=b))]
        with self._lock:
            if self.error is not None:
                raise self._report()
            if self._closed:
                raise DanFerError(f"{self.path} is closed")
            self._pending.extend(lines)
            self.rows += len(lines)
            self.frames += 1

    def _flush_locked(self) -> None:
        if self.error is not None or not self._pending:
            return
        lines, self._pending = self._pending, []
        try:
            self._f.write(lines)  # one write(2); a failure leaves only whole lines
        except OSError as exc:  # disk full, removed drive: the writer stops; the rows already on disk are whole
            self.error = DanFerError(f"cannot write {self.path}: {exc.strerror or exc} "
                                     f"(the {self.rows_written} rows written before are kept)")
            return
        self.rows_written += len(lines)

    def flush(self) -> None:
        """Write the queued rows now; DanFerError when the file cannot take them."""
        with self._lock:
            if not self._closed:
                self._flush_locked()
            if self.error is not None:
                raise self._report()

    def _flush_loop(self) -> None:
        while not self._stop.wait(self._interval / 2):
            with self._lock:  # an error is kept for the next write() or close(), in the caller's thread
                if self._closed or self.error is not None:
                    return
                self._flush_locked()

    def close(self, **summary) -> None:
        """Flush, close, and store the totals (plus any ``summary`` keys) in the sidecar.

        A second call does nothing. A write error is raised here only if no write() or flush() raised it already.
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._stop.set()
        if self._timer is not threading.current_thread():
            self._timer.join(timeout=2)
        with self._lock:
            self._flush_locked()
            try:
                self._f.close()
            except OSError as exc:
                self.error = self.error or DanFerError(f"cannot write {self.path}: {exc.strerror or exc}")
        finished = datetime.now(timezone.utc).astimezone().isoformat(timespec="seconds")
        if self.error is None:
            self._write_meta(rows=self.rows_written, frames_written=self.frames, finished=finished, **summary)
            return
        try:  # best effort: the disk may take the sidecar now that the torn line is gone
            self._write_meta(rows=self.rows_written, finished=finished, error=str(self.error))
        except DanFerError:
            pass
        if not self._reported:
            raise self._report()

    def __enter__(self) -> TimelineWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


@dataclass
class Frames:
    """Every processed frame of a timeline, once: its time, number and faces (0: none was found)."""

    time_s: np.ndarray
    frame: np.ndarray
    faces: np.ndarray
    every_frame: bool  # the file has a row for every processed frame; older files only for frames with a face


@dataclass
class Timeline:
    """A timeline CSV read back: class names, one array per column (face rows only), every frame, the sidecar,
    and what was skipped."""

    classes: list[str]
    cols: dict[str, np.ndarray]
    meta: dict
    bad_rows: int = 0  # whole lines whose values do not parse (wrong count, empty, text, NaN ...)
    first_bad_line: int | None = None  # 1-based line number in the file
    frames: Frames | None = None

    @property
    def rows(self) -> int:
        return len(self.cols["time_s"])

    @property
    def measures(self) -> list[str]:
        """The per-face numbers this file has: the class probabilities, then valence, pose and blendshapes if present."""
        return [*self.classes, *(m for m in columns.MEASURES if m in self.cols)]

    def warning(self) -> str | None:
        """One line about the skipped rows, or None when every row was good."""
        if not self.bad_rows:
            return None
        s = "" if self.bad_rows == 1 else "s"
        return f"skipped {self.bad_rows} row{s} with missing or bad values (first at line {self.first_bad_line})"


def _parse_row(row: list[str], header: list[str], classes: list[str]) -> list | None:
    """The row's values in column order, or None when any value is not what the writer writes."""
    if len(row) != len(header):
        return None
    try:
        return [columns.column(name).read(text, classes) for name, text in zip(header, row)]
    except ValueError:
        return None


def _frame_row(row: list[str], header: list[str]) -> tuple[float, int] | None:
    """(time_s, frame) of a frame-without-a-face row (``faces`` 0, every face column empty), else None."""
    if "faces" not in header or len(row) != len(header) or row[header.index("face_id")] != "":
        return None
    values = dict(zip(header, row))
    if values["faces"] != "0" or any(v for k, v in values.items() if k not in ("time_s", "frame", "faces")):
        return None
    try:
        return columns.column("time_s").read(values["time_s"], ()), columns.column("frame").read(values["frame"], ())
    except ValueError:
        return None


def _frames(cols: dict[str, np.ndarray], empty: list[tuple[float, int]], every_frame: bool) -> Frames:
    """Each processed frame once (by frame number, in time order): face rows and frame-without-a-face rows together."""
    seen: dict[int, tuple[float, int]] = {}
    for t, f in zip(cols["time_s"].tolist(), cols["frame"].tolist()):
        n = seen.get(f, (t, 0))[1]
        seen[f] = (t, n + 1)
    for t, f in empty:
        seen.setdefault(f, (t, 0))
    order = sorted(seen, key=lambda f: (seen[f][0], f))
    return Frames(np.array([seen[f][0] for f in order], np.float64), np.array(order, np.int64),
                  np.array([seen[f][1] for f in order], np.int64), every_frame)


def load_timeline(path: str | os.PathLike) -> Timeline:
    """Read a timeline CSV; an incomplete last line (a crash) is dropped, rows with bad values are
    skipped and counted. One DanFerError when the file is not a timeline at all."""
    path = Path(path)
    rows = read_whole_rows(path, "a dan-fer timeline CSV")
    header = rows[0] if rows else []
    classes = columns.classes_of(header)
    if classes is None:
        shown = ", ".join(header[:8])[:120] if rows else "empty"
        raise DanFerError(f"{path} is not a dan-fer timeline CSV (header: {shown})")
    body: list[list] = []
    empty: list[tuple[float, int]] = []  # frames without a face
    bad, first_bad = 0, None
    for n, row in enumerate(rows[1:], start=2):
        if not row:
            continue  # a blank line
        values = _parse_row(row, header, classes)
        if values is None and (frame := _frame_row(row, header)) is not None:
            empty.append(frame)
        elif values is None:
            bad += 1
            first_bad = first_bad or n
        else:
            body.append(values)
    if bad and not body and not empty:
        raise DanFerError(f"{path} has no usable rows ({bad} with missing or bad values, the first at line {first_bad})")
    cols: dict[str, np.ndarray] = {}
    for i, name in enumerate(header):
        cols[name] = np.array([r[i] for r in body], dtype=columns.column(name).dtype)
    meta: dict = {}
    side = sidecar_path(path)
    if side.is_file():
        try:
            meta = json.loads(side.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            meta = {}
        if not isinstance(meta, dict):
            meta = {}
    return Timeline(classes, cols, meta, bad, first_bad, _frames(cols, empty, "faces" in header))


def read_timeline(path: str | os.PathLike) -> tuple[list[str], dict[str, np.ndarray], dict]:
    """(class_names, columns, sidecar meta) of a timeline CSV (see load_timeline; bad rows are left out)."""
    t = load_timeline(path)
    return t.classes, t.cols, t.meta

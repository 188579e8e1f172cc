"""Event markers of a recording: ``<csv>.events.csv`` beside the timeline.

Columns: ``time_s, frame, label, source``. ``time_s`` is on the timeline's own clock (the
``time_s`` of its rows), ``frame`` the timeline frame the marker belongs to (empty in files made
by other software), ``source`` says where it came from, as its maker names it: ``key`` (the app's
keys 1-9 and M), ``lsl`` (a stimulus program's LSL marker stream, ``dan_core.pipeline.lsl``), or
``file`` (read from a file that has no source column).

``EventWriter`` writes every marker at once, as one whole line in one unbuffered write, so a
marker is on disk the moment it is made and a crash never leaves half a line. ``ClockMap``
turns a moment on the monotonic clock (a key press, an LSL timestamp) into the recording's
clock and frame, from the frames recorded around it.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from dan_core.errors import DanFerError
from dan_core.pipeline.csvrows import MAX_TIME_S, WholeLineFile, csv_line, read_whole_rows, usable_time

log = logging.getLogger(__name__)

EVENT_COLUMNS = ("time_s", "frame", "label", "source")


def events_path(csv_path: str | os.PathLike) -> Path:
    """``<csv>.events.csv`` beside the timeline CSV."""
    p = Path(csv_path)
    return p.with_name(p.name + ".events.csv")


@dataclass(frozen=True)
class Event:
    time_s: float
    frame: int | None
    label: str
    source: str  # who made it: "key", "lsl", "file", or another marker source's name

    def as_dict(self) -> dict:
        return {"time_s": round(self.time_s, 3), "frame": self.frame, "label": self.label, "source": self.source}


class EventWriter:
    """Appends markers to an events CSV, each flushed as one whole line the moment it is added.

    The file is created with its header on the first marker (a recording without markers leaves
    no empty file), but whether it may be created is checked at once, so a clash fails at the start.
    """

    def __init__(self, path: str | os.PathLike, *, force: bool = False) -> None:
        self.path = Path(path)
        self._force = force
        if self.path.exists() and not force:
            raise DanFerError(f"{self.path} exists; pass --force to overwrite it")
        self._f: WholeLineFile | None = None
        self._lock = threading.Lock()
        self._closed = False
        self.events: list[Event] = []

    def _open(self) -> None:
        self._f = WholeLineFile(self.path, force=self._force)
        self._write(csv_line(EVENT_COLUMNS))

    def _write(self, line: str) -> None:
        try:
            self._f.write([line])  # on disk at once; a failure leaves only whole lines
        except OSError as exc:
            raise DanFerError(f"cannot write {self.path}: {exc.strerror or exc}") from exc

    def add(self, time_s: float, frame: int | None, label: str, source: str) -> Event:
        """Write one marker now; DanFerError when the disk refuses or the writer is closed."""
        label = " ".join(str(label).split())  # one line, whatever was typed or sent
        if not usable_time(float(time_s), negative=True):  # never written: every reader would have to refuse it
            raise DanFerError(f"marker {label[:40]!r} not written: its time {time_s!r} is not a usable time")
        event = Event(float(time_s), None if frame is None else int(frame), label, source)
        with self._lock:
            if self._closed:
                raise DanFerError(f"{self.path} is closed")
            if self._f is None:
                self._open()
            self._write(csv_line([f"{event.time_s:.3f}", "" if event.frame is None else event.frame, event.label, event.source]))
            self.events.append(event)
        return event

    def summary(self) -> dict:
        """What the sidecar keeps about the markers."""
        return events_summary(self.events, self.path if self.events else None)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            if self._f is not None:
                self._f.close()


def events_summary(events: list[Event], path: Path | None = None) -> dict:
    counts: dict[str, int] = {}
    for e in events:
        counts[e.label] = counts.get(e.label, 0) + 1
    return {"file": path.name if path is not None else None, "count": len(events), "labels": counts,
            "markers": [e.as_dict() for e in events[:1000]]}


@dataclass
class EventsFile:
    """An events CSV read back: its markers (sorted by time) and the rows passed over for an impossible time."""

    events: list[Event]
    skipped: int = 0  # rows whose time is not finite or beyond MAX_TIME_S
    first_skipped_line: int | None = None

    def warning(self) -> str | None:
        if not self.skipped:
            return None
        what = "marker whose time is" if self.skipped == 1 else "markers whose times are"
        return (f"skipped {self.skipped} {what} not finite or beyond ±{MAX_TIME_S:.0f} s "
                f"(the first at line {self.first_skipped_line})")


def load_events_file(path: str | os.PathLike) -> EventsFile:
    """Markers of an events CSV (ours or another program's: same columns, ``frame`` may be empty), sorted by time.

    A row that is not a marker at all is one DanFerError line naming the file and row; a marker whose time is not
    finite or beyond ``MAX_TIME_S`` is passed over and counted; an incomplete last line (a crash) is ignored.
    """
    path = Path(path)
    rows = read_whole_rows(path, "an events CSV", keep_lone_line=True)
    header = [h.strip() for h in rows[0]] if rows else []
    missing = [c for c in ("time_s", "label") if c not in header]
    if missing:
        raise DanFerError(f"{path} is not an events CSV: no {', '.join(missing)} column "
                          f"(expected {', '.join(EVENT_COLUMNS)}; header: {', '.join(header[:6]) or 'empty'})")
    col = {name: header.index(name) for name in EVENT_COLUMNS if name in header}
    events, skipped, first = [], 0, None
    for n, row in enumerate(rows[1:], start=2):
        if not row or not any(v.strip() for v in row):
            continue
        try:
            t = float(row[col["time_s"]])
            frame_text = row[col["frame"]].strip() if "frame" in col and col["frame"] < len(row) else ""
            frame = int(float(frame_text)) if frame_text else None
            label = row[col["label"]].strip()
        except (ValueError, IndexError, OverflowError):
            raise DanFerError(f"{path}, line {n}: not a marker row ({','.join(row)[:80]})") from None
        if not usable_time(t, negative=True):
            skipped += 1
            first = first or n
            continue
        source = row[col["source"]].strip() if "source" in col and col["source"] < len(row) else ""
        events.append(Event(t, frame, label, source or "file"))
    events.sort(key=lambda e: e.time_s)
    return EventsFile(events, skipped, first)


def read_events(path: str | os.PathLike) -> list[Event]:
    """The markers of an events CSV (see ``load_events_file``); skipped ones are one logged warning."""
    loaded = load_events_file(path)
    if note := loaded.warning():
        log.warning("%s: %s", path, note)
    return loaded.events


class ClockMap:
    """Recent frames' (monotonic time, recording time, frame index): maps a moment to the recording's clock.

    ``frame_seen`` is called for each recorded frame with the moment it left its source; ``locate``
    puts a moment (e.g. an LSL marker's timestamp converted to ``time.monotonic()``) on the frame
    seen nearest to it and on the recording's clock. Seconds are seconds on both clocks (a camera,
    or a file played in real time).
    """

    def __init__(self, keep: int = 600) -> None:
        self._frames: deque[tuple[float, float, int]] = deque(maxlen=keep)
        self._lock = threading.Lock()

    def frame_seen(self, monotonic_s: float, time_s: float, index: int) -> None:
        with self._lock:
            self._frames.append((float(monotonic_s), float(time_s), int(index)))

    def __len__(self) -> int:
        return len(self._frames)

    def locate(self, monotonic_s: float) -> tuple[float, int | None]:
        """(time on the recording's clock, nearest recorded frame); (nan, None) before any frame."""
        with self._lock:
            frames = list(self._frames)
        if not frames:
            return float("nan"), None
        mono, t, index = min(frames, key=lambda f: abs(f[0] - monotonic_s))
        return t + (monotonic_s - mono), index


class MarkerLog:
    """The markers of one recording, into one ``EventWriter``, each labelled with the source its caller names.

    ``at_frame``: a marker at a frame on the recording's clock (a key pressed at the frame shown),
    written at once. ``at_moment``: a marker at a moment on the monotonic clock (another
    instrument's, e.g. an LSL marker); it waits until a frame at or after its moment was recorded
    (or ``close``), then lands on the nearest recorded frame and on the recording's clock
    (``ClockMap``). ``outlet`` (an LSL ``MarkerOutlet``) re-sends ``at_frame`` markers to the other
    instruments (``at_moment`` ones came from an instrument already).
    """

    def __init__(self, writer: EventWriter, *, outlet=None) -> None:
        self.writer = writer
        self.clock = ClockMap()
        self.outlet = outlet
        self._pending: list[tuple[str, float, str]] = []  # (label, monotonic moment, source)
        self._latest = float("-inf")
        self._lock = threading.Lock()

    def at_frame(self, label: str, time_s: float, frame: int | None, *, source: str) -> Event:
        event = self.writer.add(time_s, frame, label, source)
        if self.outlet is not None:
            self.outlet.push(event.label)
        return event

    def at_moment(self, label: str, monotonic_s: float, *, source: str) -> None:
        with self._lock:
            self._pending.append((label, monotonic_s, source))
        self._place(final=False)

    def frame_seen(self, monotonic_s: float, time_s: float, index: int) -> None:
        self.clock.frame_seen(monotonic_s, time_s, index)
        with self._lock:
            self._latest = max(self._latest, monotonic_s)
        if self._pending:
            self._place(final=False)

    def _place(self, *, final: bool) -> None:
        with self._lock:
            ready = [p for p in self._pending if final or p[1] <= self._latest]
            self._pending = [p for p in self._pending if p not in ready]
        for label, mono, source in ready:
            t, frame = self.clock.locate(mono)
            if frame is None:
                continue
            if not usable_time(t, negative=True):
                log.warning("%s marker %r passed over: it falls %.0f s from the recording", source, label[:40], t)
                continue
            self.writer.add(t, frame, label, source)

    def summary(self) -> dict:
        return self.writer.summary()

    def close(self) -> dict:
        """Place what is still waiting, close the file; returns the sidecar's summary."""
        try:
            self._place(final=True)
        finally:
            self.writer.close()
        return self.summary()

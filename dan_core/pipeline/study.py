"""What a study adds to a run: the LSL outlets, the LSL marker listener and the recording's markers.

``dan-fer analyze`` and the app (through ``LiveAnalysis``) hold one ``StudyLinks``:
``frame(result, monotonic_s)`` is called for every processed frame (LSL sample per face, and the
frame's moment for placing markers made at a moment while recording); ``start_recording`` /
``stop_recording`` open and close ``<csv>.events.csv``. A marker source calls
``marker_at_frame`` (a marker at a shown frame: the app's keys) or ``marker_at_moment`` (a moment
on the monotonic clock: the LSL listener) with its own name as ``source``.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

from dan_core.errors import DanFerError
from dan_core.pipeline.events import EventWriter, MarkerLog, events_path

if TYPE_CHECKING:
    from dan_core.pipeline.options import StudyOptions

log = logging.getLogger(__name__)


class StudyLinks:
    def __init__(self, *, lsl: bool = False, lsl_markers: bool = False) -> None:
        self.lsl = lsl
        self.outlet = None  # lsl.FaceOutlet
        self.marker_outlet = None  # lsl.MarkerOutlet
        self.listener = None  # lsl.MarkerListener
        self.markers: MarkerLog | None = None
        self._classes: tuple | None = None  # (class names, fps) of the open outlet
        self.markers_dropped = 0  # markers made at a moment while nothing was recorded
        self._told = 0
        if lsl:
            from dan_core.pipeline.lsl import MarkerOutlet

            self.marker_outlet = MarkerOutlet()
        if lsl_markers:
            from dan_core.pipeline.lsl import MarkerListener

            own = self.marker_outlet
            self.listener = MarkerListener(functools.partial(self.marker_at_moment, source="lsl"),
                                           ignore_uids=[own.uid] if own else [],  # never our own markers
                                           ignore_source_ids=[own.source_id] if own else []).start()

    @property
    def active(self) -> bool:
        return self.lsl or self.listener is not None

    def set_classes(self, class_names: Sequence[str], fps: float) -> None:
        """(Re)open the FacialExpression outlet for a model's classes and a source's frame rate (with --lsl)."""
        key = (tuple(class_names), round(float(fps or 0.0), 3))
        if not self.lsl or key == self._classes:
            return
        from dan_core.pipeline.lsl import FaceOutlet

        if self.outlet is not None:
            self.outlet.close()
        self.outlet = None
        self.outlet = FaceOutlet(class_names, fps)
        self._classes = key

    def frame(self, result, monotonic_s: float) -> None:
        """One processed frame: its faces to the outlet; its moment to the recording's markers."""
        if self.outlet is not None:
            self.outlet.push(result, monotonic_s)
        markers = self.markers
        if markers is not None:
            markers.frame_seen(monotonic_s, result.time_s, result.index)

    def marker_at_moment(self, label: str, monotonic_s: float, *, source: str) -> None:
        """A marker at a moment on the monotonic clock, from any thread; placed on the recording's frames
        (dropped and counted while nothing is recorded)."""
        markers = self.markers
        if markers is None:
            self.markers_dropped += 1
            return
        try:
            markers.at_moment(label, monotonic_s, source=source)
        except DanFerError as exc:  # the disk refused: the recording reports it with its next row
            log.error("%s", exc)

    def adopt_recording(self, other: StudyLinks) -> None:
        """Go on with ``other``'s running recording (its events file), e.g. when LSL is switched on while recording;
        its markers at a frame go out on this one's outlet from now on."""
        self.markers, other.markers = other.markers, None
        self._told = other._told
        if self.markers is not None:
            self.markers.outlet = self.marker_outlet

    def start_recording(self, csv_path: str | os.PathLike, *, force: bool = False) -> MarkerLog:
        self.markers = MarkerLog(EventWriter(events_path(csv_path), force=force), outlet=self.marker_outlet)
        self._told = 0
        return self.markers

    def new_events(self) -> list:
        """Markers written since the last call (of every source), for a viewer to draw."""
        markers = self.markers
        if markers is None:
            return []
        events = markers.writer.events
        new, self._told = events[self._told:], len(events)
        return list(new)

    def marker_at_frame(self, label: str, time_s: float, frame: int | None, *, source: str):
        """A marker at a frame on the recording's clock (the one the user saw); written at once and sent on
        our LSL marker outlet. DanFerError when nothing is recorded (it is still sent)."""
        markers = self.markers
        if markers is None:
            if self.marker_outlet is not None:
                self.marker_outlet.push(label)
            raise DanFerError("markers are written while recording: press R first")
        return markers.at_frame(label, time_s, frame, source=source)

    def stop_recording(self) -> dict | None:
        """Close the events file; the summary for the sidecar (None when no recording was running)."""
        markers, self.markers = self.markers, None
        return markers.close() if markers is not None else None

    def close(self) -> None:
        if self.listener is not None:
            self.listener.stop()
            self.listener = None
        self.stop_recording()
        for o in (self.outlet, self.marker_outlet):
            if o is not None:
                o.close()
        self.outlet = self.marker_outlet = None


def open_study(options: StudyOptions, class_names: Sequence[str], fps: float, csv_path: str | os.PathLike | None = None, *,
               force: bool = False) -> StudyLinks:
    """The ``StudyLinks`` a run asks for (``--lsl``, ``--lsl-markers``): the outlet for these classes at this frame rate
    and, with ``--lsl-markers``, the markers recorded into ``<csv_path>.events.csv``. Nothing is left open on failure."""
    study = StudyLinks(lsl=options.lsl, lsl_markers=options.lsl_markers)
    try:
        study.set_classes(class_names, fps)
        if options.lsl_markers and csv_path is not None:
            study.start_recording(csv_path, force=force)
    except BaseException:
        study.close()
        raise
    return study

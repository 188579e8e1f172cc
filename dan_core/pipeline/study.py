"""What a study adds to a run: the LSL outlets, the marker sources and the recording's markers.

``StudyOptions`` are its options (the ``--lsl...`` flags of analyze, bench and the app, through
``options.AnalysisOptions``). ``dan-fer analyze`` and the app (through ``LiveAnalysis``) hold one
``StudyLinks``: ``frame(result, monotonic_s)`` is called for every processed frame (LSL sample per
face, and the frame's moment for placing markers made at a moment while recording);
``start_recording`` / ``stop_recording`` open and close ``<csv>.events.csv``. A marker source
calls ``marker_at_frame`` (a marker at a shown frame: the app's keys) or ``marker_at_moment`` (a
moment on the monotonic clock: the LSL listener, started here) with its own name as ``source``.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from dan_core.cli_fields import option
from dan_core.errors import DanFerError
from dan_core.pipeline.events import EventWriter, MarkerLog, events_path
from dan_core.pipeline.lsl import STREAM_NAME
from dan_core.pipeline.lsl_scope import DEFAULT_SCOPE, SCOPES

log = logging.getLogger(__name__)

LSL = "Lab Streaming Layer"  # the options' group in --help


@dataclass
class StudyOptions:
    """What a study adds to a run (``StudyLinks``)."""

    lsl: bool = option(False, "stream each face's probabilities over Lab Streaming Layer (type FacialExpression) and our "
                       "markers (type Markers)", group=LSL)
    lsl_markers: bool = option(False, "record the markers of every LSL stream of type Markers into <csv>.events.csv "
                               "(source=lsl)", group=LSL)
    lsl_scope: str = option(DEFAULT_SCOPE, "machine: LSL streams and sockets stay on this computer; lab: liblsl's own "
                            "settings, streams open to the local network (LSL has no authentication)", group=LSL,
                            choices=SCOPES)
    lsl_name: str = option(STREAM_NAME, "name of our LSL streams (<name>-markers for the markers); a second dan-fer on one "
                           "computer needs its own", group=LSL)

    @property
    def uses_lsl(self) -> bool:
        return self.lsl or self.lsl_markers


class StudyLinks:
    """The study parts a run asked for: ``StudyLinks(options)`` or ``StudyLinks(lsl=True, ...)`` (``StudyOptions``' fields)."""

    def __init__(self, options: StudyOptions | None = None, **fields: Any) -> None:
        self.options = o = dataclasses.replace(options or StudyOptions(), **fields)
        self.lsl = o.lsl
        self.outlet = None  # lsl.FaceOutlet
        self.marker_outlet = None  # lsl.MarkerOutlet
        self.listener = None  # lsl.MarkerListener
        self.markers: MarkerLog | None = None
        self._classes: tuple | None = None  # (class names, fps) of the open outlet
        self.markers_dropped = 0  # markers made at a moment while nothing was recorded
        self._told = 0
        self._sources: list = []  # the marker sources started here (each with stop())
        if o.lsl:
            from dan_core.pipeline.lsl import MarkerOutlet

            self.marker_outlet = MarkerOutlet()
        if o.lsl_markers:
            from dan_core.pipeline.lsl import MarkerListener

            own = self.marker_outlet
            self.listener = self._start(MarkerListener(self.at_moment_from("lsl"),
                                                       ignore_uids=[own.uid] if own else [],  # never our own markers
                                                       ignore_source_ids=[own.source_id] if own else []))

    def _start(self, source):
        """A marker source (an object with start() and stop()), started now and stopped at ``close``."""
        self._sources.append(source)
        return source.start()

    def at_moment_from(self, source: str) -> Callable[[str, float], None]:
        """The callback a marker source calls with (label, monotonic moment): ``marker_at_moment`` under its name."""
        return functools.partial(self.marker_at_moment, source=source)

    @property
    def listening(self) -> bool:
        """Whether a marker source runs: its markers are recorded while a recording runs."""
        return bool(self._sources)

    @property
    def active(self) -> bool:
        """Whether frames matter to it: an LSL outlet to feed, or a marker source whose markers land on frames."""
        return self.lsl or self.listening

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
        for source in self._sources:
            source.stop()
        self._sources, self.listener = [], None
        self.stop_recording()
        for o in (self.outlet, self.marker_outlet):
            if o is not None:
                o.close()
        self.outlet = self.marker_outlet = None


def open_study(options: StudyOptions, class_names: Sequence[str], fps: float, csv_path: str | os.PathLike | None = None, *,
               force: bool = False) -> StudyLinks:
    """The ``StudyLinks`` a run asks for (``--lsl``, ``--lsl-markers``): the outlet for these classes at this frame rate
    and, with a marker source (``--lsl-markers``), its markers recorded into ``<csv_path>.events.csv``. Nothing is left
    open on failure."""
    study = StudyLinks(options)
    try:
        study.set_classes(class_names, fps)
        if study.listening and csv_path is not None:
            study.start_recording(csv_path, force=force)
    except BaseException:
        study.close()
        raise
    return study

"""Lab Streaming Layer: our expressions and markers out, a stimulus program's markers in (pylsl).

- ``FaceOutlet``: stream ``dan-fer``, type ``FacialExpression``, one float32 sample per face per
  processed frame: ``face_id, x, y, w, h, <one per class>``; channel labels in
  ``desc/channels/channel/label`` and the class order in ``desc/classes/class``; nominal rate = the
  source's frame rate. Each sample carries the moment its frame left the source, on LSL's clock.
- ``MarkerOutlet``: stream ``dan-fer-markers``, type ``Markers``: our own markers (keys 1-9, M).
- ``MarkerListener``: every other stream of type ``Markers`` on the network (PsychoPy, jsPsych,
  any stimulus program); each marker's timestamp is brought onto this machine's clock with the
  inlet's ``time_correction()`` (LSL's clock offset to the sender) and handed on as a
  ``time.monotonic()`` moment, which ``events.MarkerLog`` places on the recording's frames.

liblsl reads its configuration from the file named by ``LSLAPICFG`` (else ``lsl_api.cfg`` in the
working folder, ``~/lsl_api/``, ``/etc/lsl_api/``). The tests ship ``tests/lsl_api.cfg``, which keeps
everything on this machine (``ResolveScope = machine``, ``KnownPeers = {127.0.0.1}``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence

from dan_core import __version__
from dan_core.errors import DanFerError

log = logging.getLogger(__name__)

STREAM_NAME = "dan-fer"
STREAM_TYPE = "FacialExpression"
MARKER_NAME = "dan-fer-markers"
MARKER_TYPE = "Markers"
FIXED_CHANNELS = ("face_id", "x", "y", "w", "h")


def _pylsl():
    try:
        import pylsl
    except (ImportError, RuntimeError, OSError) as exc:  # the wheel ships liblsl; a broken install is one line
        raise DanFerError(f"Lab Streaming Layer is unavailable (pylsl/liblsl: {exc})") from exc
    return pylsl


def lsl_offset() -> float:
    """LSL's ``local_clock()`` minus ``time.monotonic()`` (the smallest of a few readings' spans)."""
    pylsl = _pylsl()
    best = None
    for _ in range(5):
        a = time.monotonic()
        lsl = pylsl.local_clock()
        b = time.monotonic()
        if best is None or b - a < best[0]:
            best = (b - a, lsl - (a + b) / 2)
    return best[1]


def channel_labels(class_names: Sequence[str]) -> list[str]:
    return [*FIXED_CHANNELS, *class_names]


class FaceOutlet:
    """The ``FacialExpression`` outlet: one sample per face per processed frame."""

    def __init__(self, class_names: Sequence[str], fps: float, *, source_id: str = "dan-fer") -> None:
        pylsl = _pylsl()
        self.class_names = tuple(class_names)
        labels = channel_labels(self.class_names)
        info = pylsl.StreamInfo(STREAM_NAME, STREAM_TYPE, len(labels), float(fps) if fps and fps > 0 else pylsl.IRREGULAR_RATE,
                                pylsl.cf_float32, source_id)
        desc = info.desc()
        desc.append_child_value("software", f"dan-fer {__version__}")
        channels = desc.append_child("channels")
        for name in labels:
            ch = channels.append_child("channel")
            ch.append_child_value("label", name)
            ch.append_child_value("unit", "pixels" if name in FIXED_CHANNELS[1:] else ("id" if name == "face_id" else "probability"))
        classes = desc.append_child("classes")
        for name in self.class_names:
            classes.append_child_value("class", name)
        self._outlet = pylsl.StreamOutlet(info)
        self._offset = lsl_offset()
        self.samples = 0

    def push(self, result, monotonic_s: float | None = None) -> None:
        """One sample per face of a FrameResult, stamped with ``monotonic_s`` (the frame's capture) on LSL's clock."""
        if not result.faces:
            return
        stamp = (monotonic_s if monotonic_s is not None else time.monotonic()) + self._offset
        for f in result.faces:
            x, y, w, h = f.box
            self._outlet.push_sample([float(f.face_id), float(x), float(y), float(w), float(h),
                                      *(float(p) for p in f.probs)], stamp)
            self.samples += 1

    def close(self) -> None:
        self._outlet = None


class MarkerOutlet:
    """The ``Markers`` outlet for our own markers (one string channel, irregular rate)."""

    def __init__(self, *, source_id: str = "dan-fer-markers") -> None:
        pylsl = _pylsl()
        info = pylsl.StreamInfo(MARKER_NAME, MARKER_TYPE, 1, pylsl.IRREGULAR_RATE, pylsl.cf_string, source_id)
        self.source_id = source_id
        self._outlet = pylsl.StreamOutlet(info)
        self._offset = lsl_offset()

    def push(self, label: str, monotonic_s: float | None = None) -> None:
        stamp = (monotonic_s if monotonic_s is not None else time.monotonic()) + self._offset
        self._outlet.push_sample([str(label)], stamp)

    def close(self) -> None:
        self._outlet = None


class MarkerListener:
    """A thread that reads every ``Markers`` stream on the network and calls ``on_marker(label, monotonic_s)``.

    Streams are found as they appear (``ContinuousResolver``); ``ignore_source_ids`` leaves out
    our own marker outlet. Stopping is cooperative (``stop()``).
    """

    def __init__(self, on_marker: Callable[[str, float], None], *, ignore_source_ids: Sequence[str] = (),
                 poll_s: float = 0.005) -> None:
        self._pylsl = _pylsl()
        self._on_marker = on_marker
        self._ignore = set(ignore_source_ids)
        self._poll = poll_s
        self._stop = threading.Event()
        self._offset = lsl_offset()
        self._thread = threading.Thread(target=self._run, name="dan-fer-lsl-markers", daemon=True)
        self.streams: list[str] = []  # names of the streams listened to
        self.received = 0

    def start(self) -> MarkerListener:
        self._thread.start()
        return self

    def stop(self, timeout: float = 3.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        pylsl = self._pylsl
        resolver = pylsl.ContinuousResolver(prop="type", value=MARKER_TYPE)
        inlets: dict[str, object] = {}  # uid -> (inlet, correction)
        next_resolve = 0.0
        try:
            while not self._stop.is_set():
                now = time.monotonic()
                if now >= next_resolve:
                    next_resolve = now + 0.5
                    for info in resolver.results():
                        uid = info.uid()
                        if uid in inlets or info.source_id() in self._ignore:
                            continue
                        inlet = pylsl.StreamInlet(info, max_buflen=60, recover=True)
                        inlet.open_stream(timeout=2.0)
                        inlets[uid] = [inlet, inlet.time_correction(timeout=2.0), now]
                        self.streams.append(info.name())
                got = False
                for entry in inlets.values():
                    inlet = entry[0]
                    if now - entry[2] > 5.0:  # LSL's offset to the sender drifts slowly: refresh it now and then
                        try:
                            entry[1], entry[2] = inlet.time_correction(timeout=0.5), now
                        except Exception:  # a sender that went away: keep the last correction
                            entry[2] = now
                    while True:
                        sample, stamp = inlet.pull_sample(timeout=0.0)
                        if sample is None:
                            break
                        got = True
                        self.received += 1
                        label = str(sample[0]) if sample else ""
                        self._on_marker(label, stamp + entry[1] - self._offset)
                if not got:
                    self._stop.wait(self._poll)
        except Exception:
            log.exception("the LSL marker listener stopped")
        finally:
            for entry in inlets.values():
                try:
                    entry[0].close_stream()
                except Exception:
                    pass

"""Lab Streaming Layer: our expressions and markers out, a stimulus program's markers in (pylsl).

- ``FaceOutlet``: stream ``<name>`` (``--lsl-name``, default ``dan-fer``), type ``FacialExpression``,
  one float32 sample per face per processed frame: ``face_id, x, y, w, h, <one per class>, yaw, pitch, roll``
  (head pose in degrees, NaN when a face has none);
  channel labels in ``desc/channels/channel/label`` and the class order in ``desc/classes/class``;
  nominal rate = the source's frame rate. Each sample carries the moment its frame left the
  source, on LSL's clock.
- ``MarkerOutlet``: stream ``<name>-markers``, type ``Markers``: our own markers (keys 1-9, M).
- ``MarkerListener``: every other stream of type ``Markers`` (PsychoPy, jsPsych, any stimulus
  program); each marker's timestamp is brought onto this machine's clock with the inlet's
  ``time_correction()`` (LSL's clock offset to the sender) and handed on as a ``time.monotonic()``
  moment, which ``events.MarkerLog`` places on the recording's frames. A marker that is not UTF-8
  text, or whose time is not finite or absurdly far from now, is one warning and is passed over;
  our own marker outlet is never listened to.

Source ids are stable (``<name>@<host>``, ``<name>-markers@<host>``): LSL's recovery and LabRecorder
find a restarted dan-fer by them; a second dan-fer on the same computer needs another ``--lsl-name``
(it is refused otherwise). How far LSL reaches (``--lsl-scope``) and liblsl's log: ``lsl_scope``.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from dan_core import __version__
from dan_core.errors import DanFerError
from dan_core.pipeline.csvrows import MAX_TIME_S
from dan_core.pipeline.lsl_scope import DEFAULT_SCOPE, apply

log = logging.getLogger(__name__)

STREAM_NAME = "dan-fer"
STREAM_TYPE = "FacialExpression"
MARKER_TYPE = "Markers"
FIXED_CHANNELS = ("face_id", "x", "y", "w", "h")
POSE_CHANNELS = ("yaw", "pitch", "roll")  # degrees (measures.head_pose), after the classes


@dataclass
class LslSettings:
    """This process's LSL choices: how far it reaches, and the name its streams are published under."""

    scope: str = DEFAULT_SCOPE
    name: str = STREAM_NAME


SETTINGS = LslSettings()


def configure(*, scope: str | None = None, name: str | None = None) -> LslSettings:
    """Set --lsl-scope / --lsl-name for this process (before the first outlet or listener)."""
    if scope is not None:
        SETTINGS.scope = scope
    if name is not None:
        if not name.strip() or any(c in name for c in "\r\n\0"):
            raise DanFerError(f"--lsl-name must be a non-empty single line, got {name!r}")
        SETTINGS.name = name.strip()
    return SETTINGS


def _pylsl():
    try:
        import pylsl
    except (ImportError, RuntimeError, OSError) as exc:  # the wheel ships liblsl; a broken install is one line
        raise DanFerError(f"Lab Streaming Layer is unavailable (pylsl/liblsl: {exc})") from exc
    apply(SETTINGS.scope, pylsl)  # before liblsl's first outlet, inlet or resolver
    return pylsl


def source_ids(name: str | None = None) -> tuple[str, str]:
    """(faces, markers) source ids: the same on every run of this name on this computer."""
    name = name or SETTINGS.name
    host = socket.gethostname()
    return f"{name}@{host}", f"{name}-markers@{host}"


def _claim(source_id: str, name: str):
    """Hold this computer's claim on ``source_id`` while the outlet lives (a lock file the system releases when the
    process ends, however it ends); a second dan-fer under the same name is refused at once."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no check
        return None
    folder = Path(os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir())
    path = folder / f"dan-fer-lsl-{hashlib.sha256(source_id.encode('utf-8')).hexdigest()[:16]}.lock"
    try:
        handle = open(path, "a+")  # held open while the outlet lives
    except OSError:
        return None  # nowhere to keep the claim: no check
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        raise DanFerError(f"another dan-fer on this computer already publishes the LSL stream {name!r} ({source_id}): "
                          "give this one another --lsl-name") from None
    return handle


def _release(handle) -> None:
    if handle is not None:
        handle.close()  # closing the file drops the lock


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
    return [*FIXED_CHANNELS, *class_names, *POSE_CHANNELS]


def channel_unit(name: str) -> str:
    if name == "face_id":
        return "id"
    if name in FIXED_CHANNELS:
        return "pixels"
    return "degrees" if name in POSE_CHANNELS else "probability"


def pose_values(face) -> list[float]:
    pose = getattr(face, "pose", None)
    return [math.nan] * 3 if pose is None else [float(pose.yaw), float(pose.pitch), float(pose.roll)]


class _Outlet:
    """What our two outlets share: a claimed name (``_claim``), liblsl's outlet and its clock offset."""

    _claim = None
    _outlet = None
    _offset = 0.0

    def _stamp(self, monotonic_s: float | None) -> float:
        """``monotonic_s`` (default: now) on LSL's clock."""
        return (monotonic_s if monotonic_s is not None else time.monotonic()) + self._offset

    def close(self) -> None:
        self._outlet = None
        _release(self._claim)
        self._claim = None

    def __del__(self) -> None:  # an outlet dropped without close() still gives its name back
        _release(getattr(self, "_claim", None))


class FaceOutlet(_Outlet):
    """The ``FacialExpression`` outlet: one sample per face per processed frame."""

    def __init__(self, class_names: Sequence[str], fps: float, *, name: str | None = None, source_id: str | None = None) -> None:
        pylsl = _pylsl()
        self.name = name or SETTINGS.name
        self.source_id = source_id or source_ids(self.name)[0]
        self._claim = _claim(self.source_id, self.name)
        self.class_names = tuple(class_names)
        labels = channel_labels(self.class_names)
        info = pylsl.StreamInfo(self.name, STREAM_TYPE, len(labels), float(fps) if fps and fps > 0 else pylsl.IRREGULAR_RATE,
                                pylsl.cf_float32, self.source_id)
        desc = info.desc()
        desc.append_child_value("software", f"dan-fer {__version__}")
        channels = desc.append_child("channels")
        for name in labels:
            ch = channels.append_child("channel")
            ch.append_child_value("label", name)
            ch.append_child_value("unit", channel_unit(name))
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
        stamp = self._stamp(monotonic_s)
        for f in result.faces:
            x, y, w, h = f.box
            self._outlet.push_sample([float(f.face_id), float(x), float(y), float(w), float(h),
                                      *(float(p) for p in f.probs), *pose_values(f)], stamp)
            self.samples += 1


class MarkerOutlet(_Outlet):
    """The ``Markers`` outlet for our own markers (one string channel, irregular rate)."""

    def __init__(self, *, name: str | None = None, source_id: str | None = None) -> None:
        pylsl = _pylsl()
        self.name = f"{name or SETTINGS.name}-markers"
        self.source_id = source_id or source_ids(name)[1]
        self._claim = _claim(self.source_id, self.name)
        info = pylsl.StreamInfo(self.name, MARKER_TYPE, 1, pylsl.IRREGULAR_RATE, pylsl.cf_string, self.source_id)
        self._outlet = pylsl.StreamOutlet(info)
        self.uid = self._outlet.get_info().uid()  # this very outlet, whatever its name: never listened to by ourselves
        self._offset = lsl_offset()

    def push(self, label: str, monotonic_s: float | None = None) -> None:
        self._outlet.push_sample([str(label)], self._stamp(monotonic_s))


class MarkerListener:
    """A thread that reads every ``Markers`` stream it finds and calls ``on_marker(label, monotonic_s)``.

    Streams are found as they appear (``ContinuousResolver``); ``ignore_uids`` / ``ignore_source_ids``
    leave out our own marker outlet. A bad marker (not UTF-8 text, a time that is not finite or more
    than ``MAX_TIME_S`` from now) is one warning naming its stream; a stream that fails is dropped
    with one warning; the others go on. Stopping is cooperative (``stop()``).
    """

    def __init__(self, on_marker: Callable[[str, float], None], *, ignore_uids: Sequence[str] = (),
                 ignore_source_ids: Sequence[str] = (), poll_s: float = 0.005) -> None:
        self._pylsl = _pylsl()
        self._on_marker = on_marker
        self._ignore_uids = set(ignore_uids)
        self._ignore = set(ignore_source_ids)
        self._poll = poll_s
        self._stop = threading.Event()
        self._offset = lsl_offset()
        self._thread = threading.Thread(target=self._run, name="dan-fer-lsl-markers", daemon=True)
        self.streams: list[str] = []  # names of the streams listened to
        self.received = 0
        self.refused = 0  # markers passed over (bad text or time)

    def start(self) -> MarkerListener:
        self._thread.start()
        return self

    def stop(self, timeout: float = 3.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _open(self, info) -> list:
        inlet = self._pylsl.StreamInlet(info, max_buflen=60, recover=True, as_numpy=True)  # strings as sent: bytes
        inlet.open_stream(timeout=2.0)
        return [inlet, inlet.time_correction(timeout=2.0), time.monotonic(), info.name()]

    def _label(self, sample, stream: str) -> str | None:
        value = sample[0] if len(sample) else b""
        if isinstance(value, bytes):
            try:
                return value.decode("utf-8")
            except UnicodeDecodeError:
                log.warning("LSL marker from %r passed over: not UTF-8 text (%r)", stream, value[:40])
                return None
        return str(value.item() if hasattr(value, "item") else value)

    def _moment(self, stamp: float, correction: float, label: str, stream: str) -> float | None:
        """The marker's moment on ``time.monotonic()``; None (and a warning) for a time that is not finite or absurd."""
        mono = stamp + correction - self._offset
        if not math.isfinite(mono) or abs(mono - time.monotonic()) > MAX_TIME_S:
            log.warning("LSL marker %r from %r passed over: its time %r is not a usable moment", label[:40], stream, stamp)
            return None
        return mono

    def _drain(self, entry: list, now: float) -> bool:
        """Hand on what one inlet holds; whether anything came."""
        inlet, _, _, stream = entry
        if now - entry[2] > 5.0:  # LSL's offset to the sender drifts slowly: refresh it now and then
            try:
                entry[1], entry[2] = inlet.time_correction(timeout=0.5), now
            except Exception:  # a sender that went away: keep the last correction
                entry[2] = now
        got = False
        while True:
            sample, stamp = inlet.pull_sample(timeout=0.0)
            if sample is None:
                return got
            got = True
            self.received += 1
            label = self._label(sample, stream)
            moment = self._moment(stamp, entry[1], label, stream) if label is not None else None
            if moment is None:
                self.refused += 1
                continue
            self._on_marker(label, moment)

    def _run(self) -> None:
        pylsl = self._pylsl
        resolver = pylsl.ContinuousResolver(prop="type", value=MARKER_TYPE)
        inlets: dict[str, list] = {}  # uid -> [inlet, correction, when corrected, stream name]
        next_resolve = 0.0
        try:
            while not self._stop.is_set():
                now = time.monotonic()
                if now >= next_resolve:
                    next_resolve = now + 0.5
                    for info in resolver.results():
                        uid = info.uid()
                        if uid in inlets or uid in self._ignore_uids or info.source_id() in self._ignore:
                            continue
                        try:
                            inlets[uid] = self._open(info)
                        except Exception as exc:  # it went away while we connected: the next resolve tries again
                            log.debug("cannot open LSL stream %r: %s", info.name(), exc)
                            continue
                        self.streams.append(info.name())
                got = False
                for uid, entry in list(inlets.items()):
                    try:
                        got = self._drain(entry, now) or got
                    except Exception as exc:  # one stream failing never ends the others
                        log.warning("LSL marker stream %r dropped: %s", entry[3], exc)
                        self._close(inlets.pop(uid))
                        self._ignore_uids.add(uid)
                if not got:
                    self._stop.wait(self._poll)
        except Exception:
            log.exception("the LSL marker listener stopped")
        finally:
            for entry in inlets.values():
                self._close(entry)

    @staticmethod
    def _close(entry: list) -> None:
        try:
            entry[0].close_stream()
        except Exception:
            pass

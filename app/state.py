"""The app's model: settings and where they persist, the selected face's timeline, the UI-block meter. No Qt here.

Everything in this module is plain Python + NumPy so it can be tested without a QApplication
and reused by scripts; the Qt widgets only observe it.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from dan_core.cli_fields import bounds_of
from dan_core.pipeline import PipelineConfig
from dan_core.pipeline.backends import BACKENDS
from dan_core.pipeline.boxes import selected_or_largest
from dan_core.pipeline.heatmap import is_heatmap_mode
from dan_core.pipeline.precision import PRECISIONS
from dan_core.pipeline.render import RenderOptions

MAX_FACES_LIMIT = 16  # MediaPipe slows down linearly with faces; more than this is not a live use case
MAX_SMOOTHING = 0.95  # the live view's smoothing stays below the pipeline's bound (1, excluded): labels must still move


# ---------------------------------------------------------------------------------------- settings


def default_record_dir() -> Path:
    return Path.home() / "dan-fer-recordings"


@dataclass
class AppSettings:
    """What persists between runs (QSettings keys are the field names)."""

    model: str = ""  # "" = the default model in models/ (or $DAN_FER_MODEL)
    landmarker: str = ""  # "" = the pipeline's own resolution order (env, cache, download)
    backend: str = PipelineConfig.backend  # the defaults of the library's options (dan_core.pipeline.options)
    precision: str = PipelineConfig.precision
    smoothing: float = PipelineConfig.smoothing  # 0: the recording holds each frame's own numbers, as analyze's CSV
    max_faces: int = PipelineConfig.max_faces
    min_face_confidence: float = PipelineConfig.min_face_confidence
    blendshapes: bool = PipelineConfig.blendshapes  # record MediaPipe's 52 blendshape coefficients too
    heatmap: str = RenderOptions.heatmap
    opacity: float = RenderOptions.opacity
    record_dir: str = field(default_factory=lambda: str(default_record_dir()))
    record_video: bool = False  # also write the annotated video next to the CSV
    landmarks: bool = RenderOptions.landmarks
    face_bars: bool = RenderOptions.face_bars  # probability bars beside each face in the picture, too
    timeline_seconds: int = 20
    marker_labels: str = ""  # keys 1-9 while recording: "1=stimulus on; 2=stimulus off" (a digit without a label is itself)

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any] | Callable[[str], Any]) -> AppSettings:
        """Build from stored values, ignoring what is missing or malformed (QSettings hands back strings)."""
        get = values if callable(values) else values.get
        out = cls()
        for f in fields(cls):
            raw = get(f.name)
            if raw is None or raw == "" and f.name not in ("model", "landmarker"):
                continue
            default = getattr(out, f.name)
            try:
                value = _coerce(raw, type(default))
            except (TypeError, ValueError):
                continue
            setattr(out, f.name, value)
        return out.validated()

    def validated(self) -> AppSettings:
        """Clamp values into their valid ranges (a hand-edited settings file must not break the app)."""
        s = AppSettings(**asdict(self))
        if s.backend not in BACKENDS:
            s.backend = PipelineConfig.backend
        if s.precision not in PRECISIONS:
            s.precision = PipelineConfig.precision
        s.smoothing = float(min(max(s.smoothing, 0.0), MAX_SMOOTHING))
        s.max_faces = int(min(max(s.max_faces, bounds_of(PipelineConfig, "max_faces")[0]), MAX_FACES_LIMIT))
        low, high = bounds_of(PipelineConfig, "min_face_confidence")
        s.min_face_confidence = float(min(max(s.min_face_confidence, low), high))
        low, high = bounds_of(RenderOptions, "opacity")
        s.opacity = float(min(max(s.opacity, low), high))
        s.timeline_seconds = int(min(max(s.timeline_seconds, 5), 300))
        if not is_heatmap_mode(s.heatmap):
            s.heatmap = RenderOptions.heatmap
        return s

    def to_mapping(self) -> dict[str, Any]:
        return asdict(self)


class SettingsStore(Protocol):
    """Where settings persist: ``QSettings`` in the app, any object with these three methods in scripts and tests."""

    def value(self, key: str) -> Any: ...
    def setValue(self, key: str, value: Any) -> None: ...  # noqa: N802 (QSettings' name)
    def sync(self) -> None: ...


def load_settings(store: SettingsStore) -> AppSettings:
    return AppSettings.from_mapping(lambda key: store.value(key))


def save_settings(store: SettingsStore, settings: AppSettings, keys: tuple[str, ...] | None = None) -> None:
    values = settings.to_mapping()
    for key in keys or tuple(values):
        store.setValue(key, values[key])
    store.sync()


class Preferences:
    """The settings in use and the store they persist in: the one object the window's areas share.

    Every area reads ``current``; a change goes through ``change`` or ``replace``, so what one area
    changes is what the others read next, and what is saved is what is in use.
    """

    def __init__(self, store: SettingsStore, settings: AppSettings | None = None) -> None:
        self.store = store
        self.current = (settings or load_settings(store)).validated()

    def change(self, *, persist: bool = True, **values: Any) -> None:
        """Set a few fields (``persist=False``: for this run only, the stored value stays)."""
        for key, value in values.items():
            setattr(self.current, key, value)
        if persist:
            save_settings(self.store, self.current, tuple(values))

    def replace(self, new: AppSettings) -> AppSettings:
        """Use ``new`` (validated) from now on and save all of it; returns the settings it replaced."""
        old, self.current = self.current, new.validated()
        save_settings(self.store, self.current)
        return old


def _coerce(raw: Any, kind: type) -> Any:
    if kind is bool:
        if isinstance(raw, str):
            if raw.lower() in ("1", "true", "yes", "on"):
                return True
            if raw.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(raw)
        return bool(raw)
    return kind(raw)


def parse_marker_labels(text: str) -> dict[int, str]:
    """``"1=stimulus on; 2 = rest"`` -> {1: "stimulus on", 2: "rest"}; entries that are not ``digit=label`` are ignored."""
    labels = {}
    for part in str(text or "").split(";"):
        key, sep, label = part.partition("=")
        key, label = key.strip(), " ".join(label.split())
        if sep and len(key) == 1 and key in "123456789" and label:
            labels[int(key)] = label
    return labels


def marker_label(text: str, digit: int) -> str:
    """What key ``digit`` writes: ``"1 = stimulus on"`` with a label set in Settings, else the digit itself."""
    label = parse_marker_labels(text).get(digit)
    return f"{digit} = {label}" if label else str(digit)


def recording_paths(folder: str | Path, now: datetime | None = None) -> tuple[Path, Path]:
    """CSV and annotated-video paths for a new recording in ``folder``: dan-fer-YYYYmmdd-HHMMSS.*"""
    stamp = (now or datetime.now()).strftime("%Y%m%d-%H%M%S")
    base = Path(folder).expanduser() / f"dan-fer-{stamp}"
    return base.with_suffix(".csv"), base.with_suffix(".mp4")


def snapshot_path(folder: str | Path, now: datetime | None = None) -> Path:
    stamp = (now or datetime.now()).strftime("%Y%m%d-%H%M%S-%f")[:-3]
    return Path(folder).expanduser() / f"dan-fer-snapshot-{stamp}.png"


def format_elapsed(seconds: float) -> str:
    seconds = max(0, int(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


# ----------------------------------------------------------------------------------------- rates


class MaxGapMeter:
    """Longest gap between heartbeats: how long the UI thread was blocked (for the benchmark)."""

    def __init__(self, interval_s: float, clock: Callable[[], float] = time.perf_counter) -> None:
        self.interval_s = interval_s
        self._clock = clock
        self._last: float | None = None
        self.gaps: list[float] = []

    def beat(self) -> None:
        now = self._clock()
        if self._last is not None:
            self.gaps.append(now - self._last)
        self._last = now

    def max_block_ms(self) -> float:
        """Worst lateness beyond the timer interval, in ms."""
        return max((g - self.interval_s for g in self.gaps), default=0.0) * 1000.0

    def percentile_block_ms(self, q: float) -> float:
        if not self.gaps:
            return 0.0
        return float(np.percentile(np.asarray(self.gaps) - self.interval_s, q)) * 1000.0


# ---------------------------------------------------------------------------------------- faces


def face_at(boxes: Sequence[tuple[int, tuple[float, float, float, float]]], x: float, y: float, *, margin: float = 0.15) -> int | None:
    """The id of the face under (x, y): the smallest box containing it (boxes grown by ``margin``), else None.

    ``boxes`` is a sequence of (face_id, (x, y, w, h)) in frame pixels.
    """
    best: tuple[float, int] | None = None
    for face_id, (bx, by, bw, bh) in boxes:
        mx, my = bw * margin, bh * margin
        if bx - mx <= x <= bx + bw + mx and by - my <= y <= by + bh + my:
            area = bw * bh
            if best is None or area < best[0]:
                best = (area, face_id)
    return None if best is None else best[1]


class TimelineBuffer:
    """Class probabilities of one face over the last ``seconds`` of media time (the frames' own clock, the one
    markers are on), for the live chart. A jump back (a seek, a replay) starts it over."""

    def __init__(self, num_classes: int, seconds: float = 20.0) -> None:
        self.num_classes = num_classes
        self.seconds = seconds
        self.face_id: int | None = None
        self._t: deque[float] = deque()
        self._p: deque[np.ndarray] = deque()

    def add(self, t: float, face_id: int, probs: np.ndarray) -> None:
        if face_id != self.face_id or (self._t and t < self._t[-1]):
            self.clear()
            self.face_id = face_id
        if self._t and t == self._t[-1]:  # the same frame again (a redraw of a paused frame): no second sample
            self._t.pop()
            self._p.pop()
        self._t.append(float(t))
        self._p.append(np.asarray(probs, dtype=np.float32).reshape(self.num_classes))
        while self._t and t - self._t[0] > self.seconds:
            self._t.popleft()
            self._p.popleft()

    def clear(self) -> None:
        self._t.clear()
        self._p.clear()
        self.face_id = None

    def __len__(self) -> int:
        return len(self._t)

    def series(self, now: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(times relative to ``now`` (<= 0), probs (T, C)); ``now`` defaults to the newest time."""
        if not self._t:
            return np.zeros(0, np.float64), np.zeros((0, self.num_classes), np.float32)
        t = np.fromiter(self._t, dtype=np.float64, count=len(self._t))
        ref = t[-1] if now is None else now
        return t - ref, np.stack(self._p)  # (T,), (T, C)


def pick_default_face(faces: Sequence[tuple[int, tuple[float, float, float, float]]], current: int | None) -> int | None:
    """The face the panels follow (``boxes.selected_or_largest``); a frame without faces keeps the selection."""
    if not faces:
        return current  # keep the selection through brief detection gaps; the chart just pauses
    return selected_or_largest(faces, current)

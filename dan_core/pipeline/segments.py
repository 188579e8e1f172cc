"""The table a study analyses: per face, every measure between markers, and each face against its own baseline.

Segment *i* runs from marker *i* up to (not including) marker *i+1*; the last one to the end of
the timeline. Rows before the first marker form a segment labelled ``(before first marker)``,
when there are any.

For each segment and face: ``frames`` (the face's rows), ``segment_frames`` (the frames processed in
the segment) and ``valid_share`` (the share of those in which the face was found; a file from before
frame accounting has rows only for frames with a face, so there it is the share of frames with any
face), then the ``mean``, ``sd`` and ``count`` (frames with a value) of every measure: the class
probabilities, valence, yaw, pitch, roll and, when recorded, the 52 blendshapes; and the share of its
frames in which each class was the dominant one. With a baseline (``Baseline``: the segment that starts
at a marker, or a span in seconds), each face's ``baseline`` mean of every measure and ``corrected``:
the segment's mean minus it (FaceReader's participant calibration; a face absent from the baseline has
none). ``long_rows`` gives the same numbers in long format, one row per segment, face and measure.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from dan_core.errors import DanFerError
from dan_core.pipeline.events import Event

BEFORE = "(before first marker)"
WHOLE = "(whole timeline)"  # the one segment of a timeline without markers
LONG_COLUMNS = ("video", "face", "segment", "label", "start_s", "end_s", "measure", "mean", "sd", "frames", "valid_share",
                "baseline_mean", "corrected")


@dataclass(frozen=True)
class Baseline:
    """The span each face's own baseline is taken from."""

    name: str  # what the table calls it: the marker's label, or "START:END s"
    start_s: float
    end_s: float  # excluded; inf: to the end


def parse_baseline(text: str, events: Sequence[Event]) -> Baseline:
    """``--baseline LABEL`` (from the first marker with that label to the next marker) or ``START:END`` (seconds)."""
    span = re.fullmatch(r"\s*([-+]?\d+(?:\.\d*)?)\s*:\s*([-+]?\d+(?:\.\d*)?)\s*", text)
    if span:
        start, end = float(span.group(1)), float(span.group(2))
        if not end > start:
            raise DanFerError(f"--baseline {text}: the end must come after the start (seconds, START:END)")
        return Baseline(f"{start:g}:{end:g} s", start, end)
    ordered = sorted(events, key=lambda e: e.time_s)
    for i, e in enumerate(ordered):
        if e.label == text:
            return Baseline(e.label, e.time_s, ordered[i + 1].time_s if i + 1 < len(ordered) else math.inf)
    labels = ", ".join(sorted({repr(e.label) for e in ordered})[:12]) or "none"
    raise DanFerError(f"--baseline {text!r}: no marker has that label (the markers' labels: {labels}); "
                      "or give the span in seconds, START:END")


def _num(value: float, digits: int = 4) -> float | None:
    """A number for JSON and CSV: rounded, or None where there is none (NaN)."""
    return round(float(value), digits) + 0.0 if math.isfinite(value) else None  # + 0.0: no "-0.000"


def _stats(values: np.ndarray) -> tuple[float, float, int]:
    """(mean, sd, count) of the values that are there (NaN: the face had none in that frame); sd with n - 1."""
    v = values[np.isfinite(values)]
    if len(v) == 0:
        return math.nan, math.nan, 0
    return float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else math.nan, int(len(v))


def _bounds(events: Sequence[Event], t: np.ndarray) -> list[tuple[str, float, float]]:
    bounds: list[tuple[str, float, float]] = []
    events = sorted(events, key=lambda e: e.time_s)
    if not events:
        return [(WHOLE, float(t.min()), math.inf)]
    if float(t.min()) < events[0].time_s:
        bounds.append((BEFORE, float(t.min()), events[0].time_s))
    for i, e in enumerate(events):
        bounds.append((e.label, e.time_s, events[i + 1].time_s if i + 1 < len(events) else math.inf))
    return bounds


def baseline_means(cols: dict[str, np.ndarray], measures: Sequence[str], baseline: Baseline) -> dict[int, dict[str, float]]:
    """Per face, the mean of every measure over the baseline span (faces absent from it are left out)."""
    t = cols["time_s"]
    in_span = (t >= baseline.start_s) & (t < baseline.end_s)
    return {int(fid): {m: _stats(cols[m][in_span & (cols["face_id"] == fid)])[0] for m in measures}
            for fid in np.unique(cols["face_id"][in_span])}


def segment_table(classes: list[str], cols: dict[str, np.ndarray], events: Sequence[Event], *,
                  measures: Sequence[str] | None = None, frame_times: np.ndarray | None = None,
                  baseline: Baseline | None = None) -> list[dict]:
    """One dict per (segment, face) with rows in it (see the module docstring). ``measures``: the columns to average
    (default: the classes); ``frame_times``: the time of every processed frame (default: of the rows)."""
    t = cols["time_s"]
    if len(t) == 0:
        return []
    measures = list(measures or classes)
    frame_times = np.unique(t) if frame_times is None else frame_times
    end = float(max(t.max(), frame_times.max()))
    base = baseline_means(cols, measures, baseline) if baseline is not None else None
    table = []
    for seg, (label, start, stop) in enumerate(_bounds(events, t)):
        in_seg = (t >= start) & (t < stop)
        seg_frames = int(((frame_times >= start) & (frame_times < stop)).sum())
        for fid in np.unique(cols["face_id"][in_seg]):
            m = in_seg & (cols["face_id"] == fid)
            stats = {name: _stats(cols[name][m]) for name in measures}
            dom = cols["dominant"][m]
            row = {
                "segment": seg, "label": label, "start_s": round(start, 3), "end_s": round(min(stop, end), 3),
                "face_id": int(fid), "frames": int(m.sum()), "segment_frames": seg_frames,
                "valid_share": _num(m.sum() / seg_frames) if seg_frames else None,
                "mean": {k: _num(s[0]) for k, s in stats.items()}, "sd": {k: _num(s[1]) for k, s in stats.items()},
                "count": {k: s[2] for k, s in stats.items()},
                "dominant_share": {c: round(float((dom == c).mean()), 4) for c in classes},
            }
            if base is not None:
                own = base.get(int(fid), {})
                row["baseline"] = {k: _num(own.get(k, math.nan)) for k in measures}
                row["corrected"] = {k: _num(stats[k][0] - own.get(k, math.nan)) for k in measures}
            table.append(row)
    return table


def long_rows(video: str, table: list[dict]) -> list[dict]:
    """The table in long format (``LONG_COLUMNS``): one row per segment, face and measure, as R and pandas read it."""
    out = []
    for r in table:
        for name, mean in r["mean"].items():
            n, total = r["count"][name], r["segment_frames"]
            out.append({"video": video, "face": r["face_id"], "segment": r["segment"], "label": r["label"],
                        "start_s": r["start_s"], "end_s": r["end_s"], "measure": name, "mean": mean, "sd": r["sd"][name],
                        "frames": n, "valid_share": round(n / total, 4) if total else None,
                        "baseline_mean": r.get("baseline", {}).get(name), "corrected": r.get("corrected", {}).get(name)})
    return out


def _cell(value: float | None, fmt: str) -> str:
    return f"{'':>7}" if value is None else fmt.format(round(value, 3) + 0.0)  # + 0.0: no "-0.000"


def format_table(classes: list[str], table: list[dict], *, baseline: Baseline | None = None) -> str:
    """The segment table as aligned text: each measure's mean, each class's share of frames as the dominant one, and
    with a baseline each measure's change from it. Blendshapes (when recorded) follow, one line each."""
    measures = list(table[0]["mean"]) if table else list(classes)
    wide = [m for m in measures if m in classes or m in ("valence", "yaw", "pitch", "roll")]
    lead = f"{'#':>3} {'label':<22} {'start':>8} {'end':>8} {'face':>4} {'frames':>6} {'valid':>6}  "
    sections = [("mean (probabilities 0-1, valence -1..1, pose in degrees)", "mean", wide, "{:7.3f}"),
                ("dominant share (% of the face's frames)", "dominant_share", list(classes), "{:7.0%}")]
    if baseline is not None:
        end = "end" if math.isinf(baseline.end_s) else f"{baseline.end_s:g} s"
        sections.append((f"change from each face's baseline ({baseline.name}: {baseline.start_s:g} s to {end}): "
                         "mean minus the baseline mean", "corrected", wide, "{:+7.3f}"))
    lines = []
    for title, key, names, fmt in sections:
        head = lead + " ".join(f"{n[:7]:>7}" for n in names)
        lines += [title, head, "-" * len(head)]
        for r in table:
            values = " ".join(_cell(r[key][c], fmt) for c in names)
            valid = "" if r["valid_share"] is None else f"{r['valid_share']:.0%}"
            lines.append(f"{r['segment']:>3} {r['label'][:22]:<22} {r['start_s']:8.2f} {r['end_s']:8.2f} {r['face_id']:>4} "
                         f"{r['frames']:>6} {valid:>6}  {values}")
        lines.append("")
    shapes = [m for m in measures if m not in wide]
    if shapes and table:
        key = "corrected" if baseline is not None else "mean"
        lines.append(f"blendshapes ({'change from the baseline' if baseline is not None else 'mean'}, 0-1), by segment/face")
        lines.append(f"{'':<20} " + " ".join(f"{r['segment']:>3}/{r['face_id']:<3}" for r in table))
        lines += [f"{name[:20]:<20} " + " ".join(_cell(r[key][name], "{:+7.3f}" if baseline else "{:7.3f}") for r in table)
                  for name in shapes]
    return "\n".join(lines).rstrip("\n")

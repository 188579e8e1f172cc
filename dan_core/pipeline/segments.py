"""The table a study analyses: per face, mean probabilities and dominant-class shares between markers.

Segment *i* runs from marker *i* up to (not including) marker *i+1*; the last one to the end of
the timeline. Rows before the first marker form a segment labelled ``(before first marker)``
(a baseline), when there are any.
"""

from __future__ import annotations

import numpy as np

from dan_core.pipeline.events import Event

BEFORE = "(before first marker)"


def segment_table(classes: list[str], cols: dict[str, np.ndarray], events: list[Event]) -> list[dict]:
    """One dict per (segment, face) with rows in it: segment, label, start_s, end_s, face_id, frames, mean, dominant_share."""
    t = cols["time_s"]
    if len(t) == 0:
        return []
    end = float(t.max())
    bounds: list[tuple[str, float, float]] = []
    events = sorted(events, key=lambda e: e.time_s)
    if not events or float(t.min()) < events[0].time_s:
        bounds.append((BEFORE, float(t.min()), events[0].time_s if events else np.inf))
    for i, e in enumerate(events):
        stop = events[i + 1].time_s if i + 1 < len(events) else np.inf
        bounds.append((e.label, e.time_s, stop))
    table = []
    for seg, (label, start, stop) in enumerate(bounds):
        in_seg = (t >= start) & (t < stop)
        for fid in np.unique(cols["face_id"][in_seg]):
            m = in_seg & (cols["face_id"] == fid)
            dom = cols["dominant"][m]
            frames = int(m.sum())
            table.append({
                "segment": seg, "label": label, "start_s": round(start, 3), "end_s": round(min(stop, end), 3),
                "face_id": int(fid), "frames": frames,
                "mean": {c: round(float(cols[c][m].mean()), 4) for c in classes},
                "dominant_share": {c: round(float((dom == c).mean()), 4) for c in classes},
            })
    return table


def format_table(classes: list[str], table: list[dict]) -> str:
    """The segment table as aligned text: one line per segment and face, mean probability per class."""
    short = [c[:7] for c in classes]
    head = f"{'#':>3} {'label':<22} {'start':>8} {'end':>8} {'face':>4} {'frames':>6}  " + " ".join(f"{s:>7}" for s in short)
    lines = [head, "-" * len(head)]
    for r in table:
        means = " ".join(f"{r['mean'][c]:7.3f}" for c in classes)
        lines.append(f"{r['segment']:>3} {r['label'][:22]:<22} {r['start_s']:8.2f} {r['end_s']:8.2f} {r['face_id']:>4} "
                     f"{r['frames']:>6}  {means}")
    lines.append("(mean probability per class; --json also gives each class's share of frames as the dominant one)")
    return "\n".join(lines)

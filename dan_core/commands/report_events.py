"""``dan-fer report``'s markers: vertical lines in the picture, and ``--segments``' table between them.

The markers come from ``--events`` (ours or another program's file) or, by default, from the
``<timeline>.events.csv`` the recording wrote beside the timeline.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

from dan_core.errors import DanFerError


def load_events(args: argparse.Namespace) -> tuple[list, Path | None]:
    """The markers (``--events``, else the recording's own file) and their file; skipped ones are one warning line."""
    from dan_core.pipeline.events import events_path, load_events_file

    if args.events:
        path = Path(args.events)
        if not path.is_file():
            raise DanFerError(f"--events {path}: no such file")
    else:
        path = events_path(args.timeline)
        if not path.is_file():
            return [], None
    loaded = load_events_file(path)
    if note := loaded.warning():
        print(f"dan-fer report: warning: {path}: {note}", file=sys.stderr)
    return loaded.events, path


def drawable(events: list, t0: float, t1: float) -> list:
    """The markers a picture of ``t0..t1`` can show: those within one span of it (the axis grows to them); the
    others (a marker days away would overflow the drawing) are left out with one warning line."""
    span = max(t1 - t0, 1.0)
    near = [e for e in events if t0 - span <= e.time_s <= t1 + span]
    if len(near) < len(events):
        far = [e for e in events if e not in near]
        s = "" if len(far) == 1 else "s"
        print(f"dan-fer report: warning: {len(far)} marker{s} far outside the timeline ({t0:.1f}-{t1:.1f} s) not drawn "
              f"(the first at {far[0].time_s:.1f} s)", file=sys.stderr)
    return near


def draw_markers(ax, events: list, *, labels: bool) -> None:
    """Each marker as a labelled vertical line on a timeline panel (matplotlib)."""
    for e in events:
        ax.axvline(e.time_s, color="black", linewidth=1.0, linestyle="--", alpha=0.8)
        if labels:
            ax.text(e.time_s, 1.02, e.label, rotation=30, fontsize=7, ha="left", va="bottom",
                    transform=ax.get_xaxis_transform(), clip_on=False)


def run_with_events(args: argparse.Namespace, classes: list[str], cols: dict[str, np.ndarray], meta: dict, out: Path | None,
                    render: Callable[..., list[int]]) -> int:
    from dan_core.pipeline.segments import format_table, segment_table

    events, events_file = load_events(args)
    result: dict = {"timeline": str(args.timeline), "rows": int(len(cols["time_s"])), "classes": classes,
                    "events": str(events_file) if events_file else None, "markers": len(events)}
    if out is not None:
        shown = drawable(events, float(cols["time_s"].min()), float(cols["time_s"].max()))
        drawn = render(classes, cols, meta, out, max_faces=args.max_faces, min_frames=args.min_frames, events=shown)
        result.update(out=str(out), faces_drawn=drawn)
    if args.segments:
        if not events:
            raise DanFerError(f"--segments needs markers: no --events given and no {Path(args.timeline).name}.events.csv beside it")
        result["segments"] = segment_table(classes, cols, events)
    if args.json:
        print(json.dumps(result))
        return 0
    if out is not None:
        n = len(result["faces_drawn"])
        print(f"wrote {out} ({n} face{'s' if n != 1 else ''}, {result['rows']} rows, {len(events)} markers)")
    if args.segments:
        print(format_table(classes, result["segments"]))
    return 0

"""``dan-fer report``'s markers: vertical lines in the picture, and ``--segments``' table between them.

The markers come from ``--events`` (ours or another program's file) or, by default, from the
``<timeline>.events.csv`` the recording wrote beside the timeline.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Callable
from pathlib import Path

from dan_core.errors import DanFerError


def load_events(args: argparse.Namespace, timeline: str) -> tuple[list, Path | None]:
    """The markers (``--events``, else the recording's own file) and their file; skipped ones are one warning line."""
    from dan_core.pipeline.events import events_path, load_events_file

    if args.events:
        path = Path(args.events)
        if not path.is_file():
            raise DanFerError(f"--events {path}: no such file")
    else:
        path = events_path(timeline)
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


LABEL_CHARS = 28  # a longer marker label is cut (with ...) above the picture; the events file keeps it whole
LABEL_ANGLE = 30  # degrees


def _short(label: str) -> str:
    return label if len(label) <= LABEL_CHARS else label[:LABEL_CHARS - 1] + "\u2026"


def marker_label_height(events: list) -> float:
    """Inches above the top panel that its rotated marker labels take (the room a figure leaves under its title)."""
    if not events:
        return 0.0
    longest = max(len(_short(e.label)) for e in events)
    return 0.12 + longest * 0.062 * math.sin(math.radians(LABEL_ANGLE))  # 7-point characters, about 0.062 in wide


def draw_markers(ax, events: list, *, labels: bool) -> None:
    """Each marker as a labelled vertical line on a timeline panel (matplotlib); the labels, rotated, above the panel."""
    for e in events:
        ax.axvline(e.time_s, color="black", linewidth=1.0, linestyle="--", alpha=0.8)
        if labels:
            ax.text(e.time_s, 1.02, _short(e.label), rotation=LABEL_ANGLE, fontsize=7, ha="left", va="bottom",
                    transform=ax.get_xaxis_transform(), clip_on=False, rotation_mode="anchor")


def segments_of(timeline, events: list, baseline) -> list[dict]:
    """The --segments table of one timeline (every measure it has, valid shares from its frames, the baseline)."""
    from dan_core.pipeline.segments import segment_table

    frames = timeline.frames.time_s if timeline.frames is not None else None
    return segment_table(timeline.classes, timeline.cols, events, measures=timeline.measures, frame_times=frames,
                         baseline=baseline)


def one_timeline(args: argparse.Namespace, path: str, timeline, out: Path | None, render: Callable[..., list[int]]) -> dict:
    """Picture, segments and baseline of one timeline: the result ``--json`` prints for it."""
    from dan_core.pipeline.segments import parse_baseline

    classes, cols, meta = timeline.classes, timeline.cols, timeline.meta
    events, events_file = load_events(args, path)
    baseline = parse_baseline(args.baseline, events) if args.baseline else None
    result: dict = {"timeline": str(path), "rows": int(len(cols["time_s"])), "classes": classes,
                    "events": str(events_file) if events_file else None, "markers": len(events),
                    "baseline": None if baseline is None else {"name": baseline.name, "start_s": baseline.start_s,
                                                               "end_s": None if baseline.end_s == float("inf") else baseline.end_s}}
    if out is not None:
        shown = drawable(events, float(cols["time_s"].min()), float(cols["time_s"].max()))
        drawn = render(classes, cols, meta, out, max_faces=args.max_faces, min_frames=args.min_frames, events=shown,
                       baseline=baseline, measures=timeline.measures)
        result.update(out=str(out), faces_drawn=drawn)
    if args.segments or args.table:
        if not events and baseline is None:
            raise DanFerError(f"--segments needs markers: no --events given and no {Path(path).name}.events.csv beside it")
        result["segments"] = segments_of(timeline, events, baseline)
    result["_baseline"] = baseline
    return result


def run_with_events(args: argparse.Namespace, timelines: list, out: Path | None, render: Callable[..., list[int]]) -> int:
    """Each timeline's picture (one timeline), segments, ``--table`` (all timelines, long format) and output."""
    from dan_core.pipeline.segments import format_table, long_rows

    results = [one_timeline(args, path, t, out, render) for path, t in timelines]
    baselines = [r.pop("_baseline") for r in results]
    rows = [row for r in results for row in long_rows(r["timeline"], r["segments"])] if args.table else []
    if args.table:
        write_long_table(Path(args.table), rows)
    if args.json:
        print(json.dumps(results[0] if len(results) == 1 else {"timelines": results, "table": args.table}))
        return 0
    for r, baseline in zip(results, baselines):
        if len(results) > 1:
            print(f"== {r['timeline']}")
        if out is not None:
            n = len(r["faces_drawn"])
            print(f"wrote {out} ({n} face{'s' if n != 1 else ''}, {r['rows']} rows, {r['markers']} markers)")
        if args.segments:
            print(format_table(r["classes"], r["segments"], baseline=baseline))
    if args.table:
        print(f"wrote {args.table}: {len(rows)} rows (recording, face, segment, measure), long format")
    return 0


def write_long_table(path: Path, rows: list[dict]) -> None:
    """The long-format segments table (``segments.LONG_COLUMNS``), whole or not at all."""
    import csv
    import io
    import os

    from dan_core.pipeline.segments import LONG_COLUMNS

    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=LONG_COLUMNS, lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_text(buf.getvalue(), encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise DanFerError(f"cannot write {path}: {exc.strerror or exc}") from exc

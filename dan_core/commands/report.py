"""dan-fer report: a timeline CSV as a picture, probability per class over time, one panel per face."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from dan_core.cli_fields import ranged
from dan_core.errors import DanFerError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("timeline", nargs="+", help="timeline CSV written by `dan-fer analyze`, `batch` or the app (several: "
                        "--segments and --table for each)")
    parser.add_argument("--out", default=None, help="picture to write (.png, .pdf, .svg) of one timeline; needed unless "
                        "--segments or --table")
    parser.add_argument("--max-faces", type=ranged(int, 1), default=6, help="most faces to draw, longest tracks first (default: 6)")
    parser.add_argument("--min-frames", type=ranged(int, 1), default=3, help="leave out faces seen in fewer frames (default: 3)")
    parser.add_argument("--force", action="store_true", help="overwrite --out")
    parser.add_argument("--events", default=None, help="markers CSV (time_s, frame, label, source; default: <timeline>.events.csv "
                        "when it exists); another program's file with the same columns works too")
    parser.add_argument("--segments", action="store_true", help="print per-face mean probabilities and dominant-class shares "
                        "for each interval between consecutive markers")
    parser.add_argument("--baseline", default=None, metavar="LABEL|START:END",
                        help="each face's own baseline: the segment that starts at the first marker with this label, or "
                        "a span in seconds; every measure minus the face's baseline mean, in --segments, --table and the "
                        "picture")
    parser.add_argument("--table", default=None, metavar="OUT.csv", help="write the segments of every timeline in long "
                        "format (video, face, segment, label, start_s, end_s, measure, mean, sd, frames, valid_share, "
                        "baseline_mean, corrected), as R and pandas read it")
    parser.add_argument("--json", action="store_true", help="print the result (and --segments' table) as one JSON object")


def _segments(t: np.ndarray, gap: float) -> list[slice]:
    """Runs of consecutive samples; a pause longer than ``gap`` (the face was not seen) starts a new run."""
    if len(t) == 0:
        return []
    breaks = np.flatnonzero(np.diff(t) > gap) + 1
    edges = [0, *breaks.tolist(), len(t)]
    return [slice(a, b) for a, b in zip(edges[:-1], edges[1:], strict=True)]


def render(classes: list[str], cols: dict[str, np.ndarray], meta: dict, out: Path, *, max_faces: int = 6,
           min_frames: int = 3, events: list | None = None, baseline=None, measures: list[str] | None = None) -> list[int]:
    """Draw the report; returns the face IDs drawn. With a ``baseline`` (segments.Baseline), each measure's change from
    the face's baseline mean (``report_baseline``)."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    from dan_core.pipeline.draw import class_colors

    colors = {k: (r / 255, g / 255, b / 255) for k, (b, g, r) in class_colors(classes).items()}  # BGR -> RGB
    ids, counts = np.unique(cols["face_id"], return_counts=True)
    order = [int(i) for i, c in sorted(zip(ids, counts, strict=True), key=lambda ic: -ic[1]) if c >= min_frames][:max_faces]
    order.sort()
    if not order:  # photos, or faces only glimpsed: one stacked bar per face and frame instead of curves
        return render_stills(classes, cols, meta, out, colors)
    if baseline is not None:
        from dan_core.commands.report_baseline import render_corrected

        render_corrected(classes, cols, meta, out, order, colors, events=events or [], baseline=baseline,
                         measures=measures or classes)
        return order
    _save_figure(timeline_figure(classes, cols, meta, order, colors, events=events), out)
    return order


def _dominant_bars(bx, dominant: np.ndarray, classes: list[str], colors: dict, *, title: bool) -> None:
    """The share of a face's frames in which each class was the dominant one, as bars."""
    share = np.array([(dominant == c).mean() for c in classes])
    bx.barh(range(len(classes)), share, color=[colors[c] for c in classes])
    bx.set_yticks(range(len(classes)))
    bx.set_yticklabels(classes, fontsize=8)
    bx.yaxis.tick_right()
    bx.invert_yaxis()
    bx.set_xlim(0, 1)
    bx.set_xticks([0, 0.5, 1])
    bx.set_xticklabels(["0", "50%", "100%"], fontsize=8)
    if title:
        bx.set_title("dominant share", fontsize=9)


def timeline_figure(classes: list[str], cols: dict[str, np.ndarray], meta: dict, order: list[int], colors: dict, *,
                    events: list | None = None):
    """The picture of the faces in ``order``: stacked probabilities over time, markers, dominant shares (a Figure)."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    from dan_core.commands.report_events import marker_label_height

    t_all = cols["time_s"]
    dt = np.median(np.diff(np.unique(t_all))) if len(np.unique(t_all)) > 1 else 1.0
    t0, t1 = float(t_all.min()), float(t_all.max())
    if events:  # markers just before or after the rows widen the axis (``drawable`` left out the far ones)
        t0, t1 = min(t0, min(e.time_s for e in events)), max(t1, max(e.time_s for e in events))
    fig_h = 1.4 + 2.0 * len(order) + marker_label_height(events or [])
    fig, axes = plt.subplots(len(order), 2, figsize=(12, fig_h), squeeze=False,
                             gridspec_kw={"width_ratios": [5, 1.1], "wspace": 0.05})
    for row, fid in enumerate(order):
        ax, bx = axes[row]
        m = cols["face_id"] == fid
        t = cols["time_s"][m]
        p = np.stack([cols[c][m] for c in classes])  # (C, T)
        for seg in _segments(t, 2.5 * dt):
            ts = t[seg] if seg.stop - seg.start > 1 else np.array([t[seg][0] - dt / 2, t[seg][0] + dt / 2])
            ps = p[:, seg] if seg.stop - seg.start > 1 else np.repeat(p[:, seg], 2, axis=1)
            ax.stackplot(ts, ps, colors=[colors[c] for c in classes], linewidth=0)
        ax.set_xlim(t0, max(t1, t0 + dt))
        ax.set_ylim(0, 1)
        ax.set_yticks([0, 0.5, 1])
        ax.set_ylabel(f"face #{fid}\nprobability")
        ax.grid(axis="x", alpha=0.3)
        if events:
            from dan_core.commands.report_events import draw_markers

            draw_markers(ax, events, labels=row == 0)
        if row < len(order) - 1:
            ax.tick_params(labelbottom=False)
        _dominant_bars(bx, cols["dominant"][m], classes, colors, title=row == 0)
    axes[-1][0].set_xlabel("time (s)")
    source = Path(str(meta.get("source", ""))).name or "timeline"
    model = meta.get("model_name") or Path(str(meta.get("model", ""))).name
    title = f"{source}: expression probabilities over time"
    if model:
        title += f"  (model {model})"
    fig.suptitle(title, fontsize=11, x=0.02, ha="left")
    fig.legend(handles=[Patch(color=colors[c], label=c) for c in classes], loc="lower center", ncol=len(classes),
               fontsize=8, frameon=False, bbox_to_anchor=(0.45, 0.0))
    # the title above the marker labels above the top panel (the labels went into the title)
    fig.subplots_adjust(left=0.07, right=0.9, top=1 - (0.45 + marker_label_height(events or [])) / fig_h,
                        bottom=0.85 / fig_h, hspace=0.12)
    return fig


def _save_figure(fig, out: Path) -> None:
    import matplotlib.pyplot as plt

    try:
        fig.savefig(out, dpi=110)
    except (OSError, ValueError) as exc:
        raise DanFerError(f"cannot write {out}: {exc}") from exc
    finally:
        plt.close(fig)


def render_stills(classes: list[str], cols: dict[str, np.ndarray], meta: dict, out: Path, colors: dict) -> list[int]:
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    n = min(len(cols["face_id"]), 40)
    fig_h = 1.6 + 0.38 * n
    fig, ax = plt.subplots(figsize=(10, fig_h))
    left = np.zeros(n)
    for c in classes:
        vals = cols[c][:n]
        ax.barh(range(n), vals, left=left, color=colors[c], height=0.75)
        left += vals
    ax.set_yticks(range(n))
    ax.set_yticklabels([f"frame {f}, face #{i}" for f, i in zip(cols["frame"][:n], cols["face_id"][:n], strict=True)], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("probability")
    source = Path(str(meta.get("source", ""))).name or "timeline"
    ax.set_title(f"{source}: expression probabilities per face" + (f" (first {n} of {len(cols['face_id'])})"
                                                                   if n < len(cols["face_id"]) else ""), fontsize=11, loc="left")
    fig.legend(handles=[Patch(color=colors[c], label=c) for c in classes], loc="lower center", ncol=len(classes),
               fontsize=8, frameon=False)
    fig.subplots_adjust(left=0.2, right=0.97, top=1 - 0.45 / fig_h, bottom=0.95 / fig_h)
    _save_figure(fig, out)
    return sorted({int(i) for i in cols["face_id"][:n]})


def run(args: argparse.Namespace) -> int:
    from dan_core.commands.report_events import run_with_events
    from dan_core.paths import check_writable
    from dan_core.pipeline.events import events_path
    from dan_core.pipeline.timeline import load_timeline, sidecar_path

    if args.out is None and not args.segments and not args.table:
        raise DanFerError("give --out PICTURE, --segments or --table OUT.csv")
    if len(args.timeline) > 1 and (args.out or args.events):
        raise DanFerError("--out and --events go with one timeline; several timelines take --segments and --table")
    inputs = [p for t in args.timeline for p in (t, sidecar_path(t), args.events or events_path(t))]
    out = check_writable(args.out, force=args.force, what="report", inputs=inputs) if args.out else None
    if args.table:
        check_writable(args.table, force=args.force, what="--table", inputs=inputs)
    timelines = []
    for path in args.timeline:
        timeline = load_timeline(path)
        if note := timeline.warning():
            print(f"dan-fer report: warning: {path}: {note}", file=sys.stderr)
        if timeline.rows == 0:
            n = len(timeline.frames.frame) if timeline.frames is not None else 0
            raise DanFerError(f"{path} has no face rows (no face was found in its {n} frames)")
        timelines.append((path, timeline))
    return run_with_events(args, timelines, out, render)

"""``dan-fer batch``'s study table: ``DIR/segments.csv``, every video's segments between its markers, in long format.

A video's markers come from an events file beside it (``<video name>.events.csv`` or ``<stem>.events.csv``:
``time_s, frame, label, source`` on the video's own clock, as the app and stimulus programs write them)
or from ``--events-dir DIR`` (the same names there). With ``--baseline LABEL|START:END`` each face's
every measure is also given minus its own baseline mean. One row per video, face, segment and measure
(``segments.LONG_COLUMNS``), written whole or not at all, by the pool and the Dask client alike
(``batch._report``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from dan_core.errors import DanFerError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--events-dir", default=None, help="folder of events files (<video name>.events.csv or "
                        "<stem>.events.csv; default: beside each video): segments.csv gets each video's segments")
    parser.add_argument("--baseline", default=None, metavar="LABEL|START:END",
                        help="each face's own baseline (the segment that starts at the first marker with this label, or "
                        "a span in seconds): segments.csv gives every measure minus the face's baseline mean too")


def events_for(video: Path, events_dir: str | None) -> Path | None:
    """The events file of ``video`` (see the module docstring), or None."""
    folder = Path(events_dir) if events_dir else video.parent
    for name in (f"{video.name}.events.csv", f"{video.stem}.events.csv"):
        if (folder / name).is_file():
            return folder / name
    return None


def video_segments(video: Path, csv_path: Path, events_file: Path | None, baseline_text: str | None) -> list[dict]:
    """The long-format rows of one analysed video."""
    from dan_core.commands.report_events import segments_of
    from dan_core.pipeline.events import load_events_file
    from dan_core.pipeline.segments import long_rows, parse_baseline
    from dan_core.pipeline.timeline import load_timeline

    timeline = load_timeline(csv_path)
    events = load_events_file(events_file).events if events_file is not None else []
    baseline = parse_baseline(baseline_text, events) if baseline_text else None
    if timeline.rows == 0:
        return []
    return long_rows(str(video), segments_of(timeline, events, baseline))


def write_segments(args: argparse.Namespace, videos: list[Path], csvs: list[Path], complete: set[str]) -> tuple[Path | None, dict]:
    """``DIR/segments.csv`` for the videos analysed in full (``complete``: their paths) when any has markers or a
    --baseline is given; (its path or None, {video: why its segments are missing})."""
    from dan_core.commands.report_events import write_long_table

    found = {str(v): events_for(v, args.events_dir) for v in videos}
    if not args.baseline and not any(found.values()):
        return None, {}
    rows, errors = [], {}
    for video, csv_path in zip(videos, csvs):
        if str(video) not in complete:
            continue
        try:
            rows += video_segments(video, csv_path, found[str(video)], args.baseline)
        except DanFerError as exc:
            errors[str(video)] = str(exc)
    path = Path(args.out_dir) / "segments.csv"
    write_long_table(path, rows)
    return path, errors

"""Fault suite, part 8: recorded files read back: markers and rows with impossible times, sidecars with bad values.

Times that are not finite, beyond ``MAX_TIME_S`` (11.6 days) or, for rows, negative are refused at
the door with one warning naming the line, wherever events and timelines are read (report, segments,
review); a sidecar value of the wrong kind falls back to what the rows say.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace as NS

import numpy as np
import pytest

from dan_core import cli
from dan_core.pipeline.events import read_events
from dan_core.pipeline.timeline import FIXED_COLUMNS, TimelineWriter, load_timeline, sidecar_path

pytestmark = pytest.mark.faults

ROOT = Path(__file__).resolve().parent.parent
NAMES = ("neutral", "happiness", "surprise")
BAD_TIMES = ("nan", "inf", "-inf", "1e9", "-1e9")


def _timeline(path: Path, seconds: float = 4.0) -> Path:
    """Two faces at 25 fps: face 1 neutral for the first half then happy, face 2 surprised."""
    with TimelineWriter(path, NAMES, meta={"source": "clip.mp4", "fps": 25.0}, force=True) as w:
        for i in range(int(seconds * 25)):
            t = i / 25
            p1 = np.array([0.8, 0.1, 0.1] if t < seconds / 2 else [0.1, 0.8, 0.1], np.float32)
            faces = [NS(face_id=1, box=(10, 20, 30, 40), probs=p1, dominant=NAMES[int(p1.argmax())], confidence=float(p1.max())),
                     NS(face_id=2, box=(60, 20, 30, 40), probs=np.array([0.1, 0.1, 0.8], np.float32), dominant="surprise",
                        confidence=0.8)]
            w.write(NS(index=i, time_s=t, faces=faces))
    return path


def _events(path: Path, times: list[str]) -> Path:
    path.write_text("time_s,frame,label,source\n" + "".join(f"{t},,marker at {t},file\n" for t in times), encoding="utf-8")
    return path


def test_markers_with_impossible_times_are_skipped_with_one_warning(tmp_path, caplog):
    events = _events(tmp_path / "ev.csv", ["1.0", *BAD_TIMES, "3.0"])
    with caplog.at_level(logging.WARNING, logger="dan_core.pipeline.events"):
        got = read_events(events)
    assert [e.time_s for e in got] == [1.0, 3.0]  # was: nan, inf, ... among them
    [warning] = [r.getMessage() for r in caplog.records]
    assert "skipped 5 markers" in warning and "line 3" in warning and str(events) in warning


def test_report_segments_keep_every_row_despite_a_nan_marker(tmp_path, capsys):
    """Bug 3: a nan marker silently dropped the segment that ended there (848 of 1,416 rows)."""
    csv_path = _timeline(tmp_path / "rec.csv")
    events = _events(tmp_path / "ev.csv", ["1.0", "nan", "2.5"])
    rc = cli.main(["report", str(csv_path), "--events", str(events), "--segments", "--json"])
    out, err = capsys.readouterr()
    assert rc == 0
    assert err.splitlines() == [f"dan-fer report: warning: {events}: skipped 1 marker whose time is not finite or beyond "
                                "±1000000 s (the first at line 3)"]
    table = json.loads(out)["segments"]
    assert sum(r["frames"] for r in table) == len(load_timeline(csv_path).cols["time_s"]) == 200
    assert [r["label"] for r in table][::2] == ["(before first marker)", "marker at 1.0", "marker at 2.5"]


@pytest.mark.parametrize("times", [["1e9"], ["-1e9"], ["500000"], ["-3.0", "999999"]], ids=["1e9", "-1e9", "5e5", "far"])
def test_report_picture_with_markers_far_outside_the_timeline(tmp_path, capsys, times):
    """A marker at +-1e9 s crashed matplotlib ("raster overflow"); markers outside the drawn span are left out, with a note."""
    csv_path = _timeline(tmp_path / "rec.csv")
    events = _events(tmp_path / "ev.csv", ["1.0", *times])
    rc = cli.main(["report", str(csv_path), "--events", str(events), "--out", str(tmp_path / "r.png")])
    out, err = capsys.readouterr()
    assert rc == 0 and (tmp_path / "r.png").stat().st_size > 1000 and "Traceback" not in err
    assert len(err.splitlines()) == 1 and "warning" in err  # the refused or undrawn markers, named once


def _rows(path: Path, rows: list[list]) -> Path:
    header = [*FIXED_COLUMNS, *NAMES, "dominant", "confidence"]
    path.write_text("\n".join(",".join(map(str, r)) for r in [header, *rows]) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("bad", [
    ["-1.000", 5, 1, 10, 20, 30, 40, 0.2, 0.5, 0.3, "happiness", 0.5],  # a negative time
    ["1.000", 5, -1, 10, 20, 30, 40, 0.2, 0.5, 0.3, "happiness", 0.5],  # face id -1
    ["1e9", 5, 1, 10, 20, 30, 40, 0.2, 0.5, 0.3, "happiness", 0.5],  # 31 years in
    ["1.000", -5, 1, 10, 20, 30, 40, 0.2, 0.5, 0.3, "happiness", 0.5],  # a negative frame
    ["1.000", 5, 1, 10, 20, -30, 40, 0.2, 0.5, 0.3, "happiness", 0.5],  # a negative width
], ids=["time", "face_id", "far", "frame", "width"])
def test_timeline_rows_that_cannot_be_are_skipped(tmp_path, capsys, bad):
    good = [[f"{i / 25:.3f}", i, 1, 10, 20, 30, 40, 0.2, 0.5, 0.3, "happiness", 0.5] for i in range(20)]
    csv_path = _rows(tmp_path / "t.csv", [*good[:10], bad, *good[10:]])
    t = load_timeline(csv_path)
    assert t.rows == 20 and t.bad_rows == 1 and t.first_bad_line == 12  # was: accepted, a stray line in review
    rc = cli.main(["report", str(csv_path), "--out", str(tmp_path / "r.png")])
    err = capsys.readouterr().err
    assert rc == 0 and "skipped 1 row" in err and "line 12" in err


@pytest.mark.parametrize("sidecar", [{"fps": "abc"}, {"fps": float("nan")}, {"fps": -5}, {"fps": 1e308}, {"fps": [25]},
                                     {"source": 42, "fps": None}, ["not", "a", "dict"], {"source": {"a": 1}}],
                         ids=["text", "nan", "negative", "huge", "list", "source-number", "list-sidecar", "source-dict"])
def test_review_reads_a_bad_sidecar_without_failing(tmp_path, sidecar):
    """Bug 7: {"fps": "abc"} was a ValueError traceback in the review reader; the rows' own spacing is used instead."""
    from dan_core.pipeline.review import Session

    csv_path = _timeline(tmp_path / "rec.csv")
    sidecar_path(csv_path).write_text(json.dumps(sidecar), encoding="utf-8")
    _events(tmp_path / "rec.csv.events.csv", ["1.0", "nan", "2.0"])
    s = Session(csv_path)
    try:
        assert s.fps == pytest.approx(25.0) and s.video_path is None and len(s) == 100
        assert [e.time_s for e in s.events] == [1.0, 2.0]
        assert [s.position_at(e.time_s) for e in s.events] == [25, 50]
    finally:
        s.close()


def test_app_review_of_a_damaged_recording_opens(tmp_path):
    """Bug 3 and 7 in the real window: a nan marker (was: "cannot convert float NaN to integer") and a bad fps."""
    csv_path = _timeline(tmp_path / "rec.csv")
    sidecar_path(csv_path).write_text(json.dumps({"fps": "abc", "source": 5}), encoding="utf-8")
    _events(tmp_path / "rec.csv.events.csv", ["1.0", "nan", "-1e9", "2.0"])
    shot = tmp_path / "review.png"
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    env.pop("QT_QPA_PLATFORM_PLUGIN_PATH", None)
    proc = subprocess.run([sys.executable, "-m", "dan_core.cli", "app", "--review", str(csv_path), "--screenshot", str(shot),
                           "--exit-after", "0.5"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert shot.stat().st_size > 1000
    warnings = [line for line in proc.stderr.splitlines() if "skipped 2 markers" in line]
    assert len(warnings) == 1 and "line 3" in warnings[0]

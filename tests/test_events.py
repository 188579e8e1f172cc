"""Event markers: the events file, another program's file, segments between markers, the report's picture."""

from __future__ import annotations

import json
import threading
from types import SimpleNamespace

import numpy as np
import pytest

from dan_core import cli
from dan_core.errors import DanFerError
from dan_core.pipeline.core import FaceResult, FrameResult
from dan_core.pipeline.events import ClockMap, EventWriter, MarkerLog, events_path, read_events
from dan_core.pipeline.segments import BEFORE, segment_table
from dan_core.pipeline.study import StudyLinks
from dan_core.pipeline.timeline import TimelineWriter, read_timeline, sidecar_path

CLASSES = ("neutral", "happiness", "surprise")


def _face(fid: int, probs) -> FaceResult:
    probs = np.asarray(probs, np.float32)
    return FaceResult(fid, (10, 20, 30, 40), np.zeros((478, 2), np.float32), probs, CLASSES[int(probs.argmax())],
                      float(probs.max()), np.zeros((4, 7, 7), np.float32), np.zeros((2, 3), np.float32),
                      np.zeros((8, 8, 3), np.uint8))


def write_timeline(path, seconds: float = 10.0, fps: float = 10.0) -> None:
    """Face 1 neutral for the first 4 s, happy after; face 2 surprised throughout."""
    with TimelineWriter(path, CLASSES, meta={"source": "synthetic.mp4", "fps": fps}) as w:
        for i in range(int(seconds * fps)):
            t = i / fps
            p1 = [0.8, 0.1, 0.1] if t < 4.0 else [0.1, 0.8, 0.1]
            w.write(FrameResult(i, t, (640, 480), [_face(1, p1), _face(2, [0.1, 0.2, 0.7])]))


def test_every_marker_is_on_disk_at_once_as_a_whole_line(tmp_path):
    csv_path = tmp_path / "rec.csv"
    path = events_path(csv_path)
    assert path.name == "rec.csv.events.csv"
    w = EventWriter(path)
    assert not path.exists()  # no empty file for a recording without markers
    w.add(1.25, 31, "1", "key")
    assert path.read_text() == "time_s,frame,label,source\n1.250,31,1,key\n"  # before close: flushed as it goes
    w.add(2.5, 62, "stimulus, on\nnext", "key")  # commas and newlines in a typed label stay one field on one line
    w.close()
    events = read_events(path)
    assert [(e.time_s, e.frame, e.label, e.source) for e in events] == [(1.25, 31, "1", "key"), (2.5, 62, "stimulus, on next", "key")]
    with pytest.raises(DanFerError, match="exists"):
        EventWriter(path)
    with pytest.raises(DanFerError, match="closed"):
        w.add(3.0, 1, "late", "key")


def test_writer_is_safe_from_several_threads(tmp_path):
    w = EventWriter(tmp_path / "x.events.csv")
    threads = [threading.Thread(target=lambda k=k: [w.add(k + i / 100, i, f"t{k}", "key") for i in range(50)]) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    w.close()
    lines = (tmp_path / "x.events.csv").read_text().splitlines()
    assert len(lines) == 201 and all(len(line.split(",")) == 4 for line in lines)


def test_other_programs_file_empty_frames_and_bad_rows(tmp_path):
    other = tmp_path / "psychopy.csv"
    other.write_text("time_s,frame,label,source\n4.0,,happy clip,\n0.5,,baseline,psychopy\n", encoding="utf-8")
    events = read_events(other)
    assert [(e.time_s, e.frame, e.label, e.source) for e in events] == [(0.5, None, "baseline", "psychopy"),
                                                                         (4.0, None, "happy clip", "file")]
    bad = tmp_path / "bad.csv"
    bad.write_text("time_s,frame,label,source\n1.0,,a,key\nsoon,,b,key\n")
    with pytest.raises(DanFerError, match=r"line 3"):
        read_events(bad)
    wrong = tmp_path / "wrong.csv"
    wrong.write_text("onset,name\n1,a\n")
    with pytest.raises(DanFerError, match="no time_s, label column"):
        read_events(wrong)


def test_segments_between_markers(tmp_path):
    csv_path = tmp_path / "rec.csv"
    write_timeline(csv_path)
    classes, cols, _ = read_timeline(csv_path)
    events = read_events_from([(2.0, "1 = stimulus on"), (4.0, "2 = happy clip"), (8.0, "3 = rest")], tmp_path)
    table = segment_table(classes, cols, events)
    labels = [(r["label"], r["face_id"]) for r in table]
    assert labels == [(BEFORE, 1), (BEFORE, 2), ("1 = stimulus on", 1), ("1 = stimulus on", 2), ("2 = happy clip", 1),
                      ("2 = happy clip", 2), ("3 = rest", 1), ("3 = rest", 2)]
    stim1 = table[2]
    assert stim1["frames"] == 20 and stim1["start_s"] == 2.0 and stim1["end_s"] == 4.0
    assert stim1["dominant_share"]["neutral"] == 1.0 and stim1["mean"]["neutral"] == pytest.approx(0.8)
    happy1 = table[4]
    assert happy1["frames"] == 40 and happy1["dominant_share"]["happiness"] == 1.0
    assert table[6]["end_s"] == 9.9  # the last segment runs to the end of the timeline
    assert all(r["dominant_share"]["surprise"] == 1.0 for r in table if r["face_id"] == 2)


def read_events_from(rows, tmp_path):
    path = tmp_path / "ev.csv"
    path.write_text("time_s,frame,label,source\n" + "".join(f"{t},,{label},file\n" for t, label in rows))
    return read_events(path)


def test_report_segments_json_and_picture_with_markers(tmp_path, capsys):
    csv_path = tmp_path / "rec.csv"
    write_timeline(csv_path)
    other = tmp_path / "stimuli.csv"
    other.write_text("time_s,frame,label,source\n4.0,,happy clip,file\n2.0,,neutral clip,file\n")
    rc = cli.main(["report", str(csv_path), "--events", str(other), "--segments", "--json"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    result = json.loads(out)
    assert result["markers"] == 2 and [s["label"] for s in result["segments"]][::2] == [BEFORE, "neutral clip", "happy clip"]
    assert result["segments"][4]["mean"]["happiness"] == pytest.approx(0.8)
    rc = cli.main(["report", str(csv_path), "--events", str(other), "--segments"])
    out, _ = capsys.readouterr()
    assert rc == 0 and "happy clip" in out and "neutral" in out.splitlines()[1] and "dominant share" in out and "100%" in out
    # the picture: markers drawn as lines (it differs from the picture without them)
    png_with, png_without = tmp_path / "with.png", tmp_path / "without.png"
    assert cli.main(["report", str(csv_path), "--events", str(other), "--out", str(png_with)]) == 0
    assert cli.main(["report", str(csv_path), "--out", str(png_without)]) == 0
    assert "2 markers" in capsys.readouterr().out
    import cv2

    a, b = cv2.imread(str(png_with)), cv2.imread(str(png_without))
    assert a.shape[1] == b.shape[1] and a.shape[0] > b.shape[0]  # the picture grows room above it for the labels
    # the recording's own events file is found beside the timeline without --events
    w = EventWriter(events_path(csv_path))
    w.add(5.0, 50, "7", "key")
    w.close()
    assert cli.main(["report", str(csv_path), "--segments", "--json"]) == 0
    assert [s["label"] for s in json.loads(capsys.readouterr().out)["segments"]] == [BEFORE, BEFORE, "7", "7"]


def test_report_bad_events_is_one_line(tmp_path, capsys):
    csv_path = tmp_path / "rec.csv"
    write_timeline(csv_path, seconds=1.0)
    assert cli.main(["report", str(csv_path), "--events", str(tmp_path / "nope.csv"), "--segments"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no such file" in err
    assert cli.main(["report", str(csv_path), "--segments"]) == 2
    assert "needs markers" in capsys.readouterr().err


def test_lsl_markers_wait_for_their_frame_and_land_on_the_nearest(tmp_path):
    log = MarkerLog(EventWriter(tmp_path / "m.events.csv"))
    for i in range(5):
        log.frame_seen(100.0 + i * 0.04, i * 0.04, i)
    log.at_moment("onset", 100.21, source="lsl")  # after the newest recorded frame: waits
    assert not (tmp_path / "m.events.csv").exists()
    log.frame_seen(100.2, 0.2, 5)
    log.frame_seen(100.24, 0.24, 6)  # now a frame after it was seen: placed on frame 5
    events = read_events(tmp_path / "m.events.csv")
    assert [(e.frame, e.source) for e in events] == [(5, "lsl")] and events[0].time_s == pytest.approx(0.21)
    log.at_frame("1", 0.24, 6, source="key")
    summary = log.close()
    assert summary["count"] == 2 and summary["labels"] == {"onset": 1, "1": 1}
    assert np.isnan(ClockMap().locate(1.0)[0])



def test_every_marker_carries_the_source_its_caller_names(tmp_path):
    """A third protocol's markers are labelled with its own name, whether made at a frame or at a moment."""
    study = StudyLinks()
    study.start_recording(tmp_path / "r.csv")
    study.frame(SimpleNamespace(time_s=0.0, index=0, faces=[]), 50.0)
    study.marker_at_frame("tap", 0.0, 0, source="pedal")
    study.marker_at_moment("cue", 50.0, source="osc")
    study.stop_recording()
    assert [(e.label, e.source) for e in read_events(tmp_path / "r.csv.events.csv")] == [("tap", "pedal"), ("cue", "osc")]

def test_sidecar_summary_from_analyze_style_close(tmp_path):
    csv_path = tmp_path / "rec.csv"
    w = TimelineWriter(csv_path, CLASSES)
    log = MarkerLog(EventWriter(events_path(csv_path)))
    log.at_frame("1 = stimulus on", 0.0, 0, source="key")
    w.close(events=log.close())
    meta = json.loads(sidecar_path(csv_path).read_text())
    assert meta["events"]["count"] == 1 and meta["events"]["markers"][0]["label"] == "1 = stimulus on"

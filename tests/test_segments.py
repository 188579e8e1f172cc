"""Segments between markers with every measure, each face against its own baseline, the long-format table of
``report --table`` and ``batch``'s segments.csv, and the report's picture."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from dan_core import cli
from dan_core.errors import DanFerError
from dan_core.pipeline.core import FaceResult, FrameResult
from dan_core.pipeline.events import Event, EventWriter, events_path
from dan_core.pipeline.measures import BLENDSHAPE_NAMES, HeadPose
from dan_core.pipeline.segments import LONG_COLUMNS, WHOLE, Baseline, long_rows, parse_baseline, segment_table
from dan_core.pipeline.timeline import TimelineWriter, load_timeline

CLASSES = ("neutral", "happiness", "sadness")


def _face(fid: int, probs, yaw: float, smile: float) -> FaceResult:
    probs = np.asarray(probs, np.float32)
    shapes = np.zeros(len(BLENDSHAPE_NAMES), np.float32)
    shapes[BLENDSHAPE_NAMES.index("mouthSmileLeft")] = smile
    return FaceResult(fid, (10, 20, 60, 60), np.zeros((478, 2), np.float32), probs, CLASSES[int(probs.argmax())],
                      float(probs.max()), np.zeros((4, 7, 7), np.float32), np.zeros((2, 3), np.float32),
                      np.zeros((8, 8, 3), np.uint8), HeadPose(yaw, 2.0, -1.0), shapes,
                      float(probs[1] - probs[2]), "ok")


def record(path, *, happy_after: float = 2.0, face2_from: float = 0.0, gap=(5.0, 6.0)) -> None:
    """10 s at 10 fps with markers at 0 s (rest), 2 s (clip) and 6 s (rest): face 1 neutral, yaw 5 and no smile until
    ``happy_after``, then happy, yaw 15 and smiling; no face during ``gap``; face 2 sad throughout from ``face2_from``."""
    with TimelineWriter(path, CLASSES, blendshapes=True) as w:
        for i in range(100):
            t = i / 10
            faces = []
            if not gap[0] <= t < gap[1]:
                happy = t >= happy_after
                faces.append(_face(1, [0.1, 0.8, 0.1] if happy else [0.8, 0.1, 0.1], 15.0 if happy else 5.0, 0.6 if happy else 0.1))
            if t >= face2_from:
                faces.append(_face(2, [0.2, 0.1, 0.7], -10.0, 0.0))
            w.write(FrameResult(i, t, (640, 480), faces))
    writer = EventWriter(events_path(path))
    for t, label in ((0.0, "rest"), (2.0, "clip"), (6.0, "rest")):
        writer.add(t, int(t * 10), label, "key")
    writer.close()


def test_segments_give_every_measure_against_each_faces_own_baseline(tmp_path):
    path = tmp_path / "p01.csv"
    record(path, face2_from=1.0)
    t = load_timeline(path)
    events = [Event(0.0, 0, "rest", "key"), Event(2.0, 20, "clip", "key"), Event(6.0, 60, "rest", "key")]
    baseline = parse_baseline("rest", events)
    assert baseline == Baseline("rest", 0.0, 2.0)  # the first segment labelled rest
    assert t.measures == [*CLASSES, "valence", "yaw", "pitch", "roll", *BLENDSHAPE_NAMES]
    table = segment_table(t.classes, t.cols, events, measures=t.measures, frame_times=t.frames.time_s, baseline=baseline)
    assert [(r["label"], r["face_id"]) for r in table] == [("rest", 1), ("rest", 2), ("clip", 1), ("clip", 2), ("rest", 1),
                                                            ("rest", 2)]
    clip1 = table[2]
    assert clip1["frames"] == 30 and clip1["segment_frames"] == 40 and clip1["valid_share"] == 0.75  # no face for 1 s
    assert clip1["corrected"]["happiness"] == pytest.approx(0.7) and clip1["corrected"]["valence"] == pytest.approx(0.7)
    assert clip1["corrected"]["yaw"] == pytest.approx(10.0) and clip1["corrected"]["mouthSmileLeft"] == pytest.approx(0.5)
    assert clip1["baseline"]["yaw"] == pytest.approx(5.0) and clip1["sd"]["yaw"] == pytest.approx(0.0)
    face2 = table[3]  # its own baseline: 1 s of the 2 s, where it was seen
    assert face2["baseline"]["sadness"] == pytest.approx(0.7) and face2["corrected"]["sadness"] == pytest.approx(0.0)
    assert table[1]["valid_share"] == 0.5
    span = parse_baseline("6:10", events)
    again = segment_table(t.classes, t.cols, events, measures=t.measures, baseline=span)
    assert again[0]["corrected"]["happiness"] == pytest.approx(-0.7)  # rest minus the happy last 4 s
    rows = long_rows("p01.csv", table)
    assert len(rows) == 6 * len(t.measures) and set(rows[0]) == set(LONG_COLUMNS)
    yaw = next(r for r in rows if r["segment"] == 1 and r["face"] == 1 and r["measure"] == "yaw")
    assert (yaw["mean"], yaw["frames"], yaw["valid_share"], yaw["baseline_mean"], yaw["corrected"]) == (15.0, 30, 0.75, 5.0, 10.0)
    with pytest.raises(DanFerError, match="no marker has that label.*'clip', 'rest'"):
        parse_baseline("baseline", events)
    with pytest.raises(DanFerError, match="end must come after"):
        parse_baseline("5:2", events)


def test_a_face_absent_from_the_baseline_has_no_correction(tmp_path):
    path = tmp_path / "late.csv"
    record(path, face2_from=3.0)
    t = load_timeline(path)
    table = segment_table(t.classes, t.cols, [Event(2.0, 20, "clip", "key")], measures=t.measures,
                          baseline=Baseline("0:2 s", 0.0, 2.0))
    late = next(r for r in table if r["face_id"] == 2)
    assert late["baseline"]["sadness"] is None and late["corrected"]["sadness"] is None
    whole = segment_table(t.classes, t.cols, [], measures=t.classes)
    assert {r["label"] for r in whole} == {WHOLE}


def test_report_baseline_table_json_long_format_and_picture(tmp_path, capsys):
    p01, p02 = tmp_path / "p01.csv", tmp_path / "p02.csv"
    record(p01)
    record(p02, happy_after=4.0)
    assert cli.main(["report", str(p01), "--segments", "--baseline", "rest", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["baseline"] == {"name": "rest", "start_s": 0.0, "end_s": 2.0}
    assert result["segments"][2]["corrected"]["yaw"] == pytest.approx(10.0)
    assert cli.main(["report", str(p01), "--segments", "--baseline", "rest"]) == 0
    text = capsys.readouterr().out
    assert "change from each face's baseline (rest: 0 s to 2 s)" in text and "+0.700" in text and "mouthSmileLeft" in text
    table = tmp_path / "segments.csv"
    assert cli.main(["report", str(p01), str(p02), "--baseline", "rest", "--table", str(table)]) == 0
    rows = list(csv.DictReader(table.read_text().splitlines()))
    assert list(rows[0]) == list(LONG_COLUMNS) and {r["video"] for r in rows} == {str(p01), str(p02)}
    happy = {(r["video"], r["label"], r["segment"]): float(r["corrected"]) for r in rows
             if r["measure"] == "happiness" and r["face"] == "1"}
    assert happy[(str(p01), "clip", "1")] == pytest.approx(0.7) and happy[(str(p02), "clip", "1")] == pytest.approx(0.2333, abs=1e-3)
    pictures = tmp_path / "corrected.png", tmp_path / "plain.png"
    assert cli.main(["report", str(p01), "--baseline", "rest", "--out", str(pictures[0])]) == 0
    assert cli.main(["report", str(p01), "--out", str(pictures[1])]) == 0
    import cv2

    a, b = (cv2.imread(str(p)) for p in pictures)
    assert a.shape[0] > b.shape[0]  # a row of panels per face for the probabilities, one for the pose, one for blendshapes
    capsys.readouterr()
    assert cli.main(["report", str(p01), "--baseline", "nope", "--segments"]) == 2
    assert "no marker has that label" in capsys.readouterr().err


def test_report_marker_labels_stay_clear_of_the_title(tmp_path):
    """Bug: the rotated marker labels above the top panel ran into the picture's title."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    from dan_core.commands.report import timeline_figure

    path = tmp_path / "p.csv"
    record(path)
    t = load_timeline(path)
    events = [Event(0.5, 5, "1 = stimulus on: a long label", "key"), Event(6.0, 60, "2 = stimulus off, rest", "key")]
    fig = timeline_figure(t.classes, t.cols, {"source": "p.mp4", "model_name": "dan_ferplus_112.onnx"}, [1, 2],
                          {c: (0.5, 0.5, 0.5) for c in CLASSES}, events=events)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    title = fig._suptitle.get_window_extent(renderer)
    labels = [txt.get_window_extent(renderer) for ax in fig.axes for txt in ax.texts]
    assert len(labels) == 2 and not any(box.overlaps(title) for box in labels)
    assert all(box.y1 <= fig.bbox.y1 for box in labels)  # and inside the picture


@pytest.mark.slow
def test_batch_writes_segments_csv_from_events_beside_the_videos(tmp_path, make_clip, landmarker_path):
    videos = tmp_path / "videos"
    videos.mkdir()
    for name, start in (("p01", 0), ("p02", 200)):
        make_clip(videos / f"{name}.mp4", start=start, frames=20)
        (videos / f"{name}.events.csv").write_text("time_s,frame,label,source\n0.0,0,rest,psychopy\n0.4,10,clip,psychopy\n")
    out = tmp_path / "out"
    rc = cli.main(["batch", str(videos), "--out-dir", str(out), "--workers", "1", "--landmarker", str(landmarker_path),
                   "--baseline", "rest", "--blendshapes", "--no-progress", "--json"])
    assert rc == 0
    rows = list(csv.DictReader((out / "segments.csv").read_text().splitlines()))
    assert list(rows[0]) == list(LONG_COLUMNS)
    assert {r["video"] for r in rows} == {str(videos / "p01.mp4"), str(videos / "p02.mp4")}
    assert {r["label"] for r in rows} == {"rest", "clip"}
    assert {r["measure"] for r in rows} >= {"happiness", "valence", "yaw", "jawOpen", "mouthSmileLeft"}  # --blendshapes
    rest = [r for r in rows if r["label"] == "rest"]
    assert all(r["corrected"] == "" or abs(float(r["corrected"])) < 1e-6 for r in rest)  # the baseline against itself
    clip = next(r for r in rows if r["label"] == "clip" and r["measure"] == "yaw")
    assert int(clip["frames"]) == 10 and float(clip["valid_share"]) == 1.0

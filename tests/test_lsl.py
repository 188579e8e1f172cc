"""Lab Streaming Layer on loopback (liblsl configured by tests/lsl_api.cfg through LSLAPICFG: this machine only).

Real outlets and inlets: our FacialExpression outlet read by an inlet; a stimulus program's
Markers outlet read by our listener and placed on the frames recorded around it.
"""

from __future__ import annotations

import functools
import json
import math
import os
import threading
import time
import uuid
from pathlib import Path

import numpy as np
import pytest

pylsl = pytest.importorskip("pylsl")

from dan_core.pipeline.core import FaceResult, FrameResult  # noqa: E402
from dan_core.pipeline.events import EventWriter, MarkerLog, read_events  # noqa: E402
from dan_core.pipeline.lsl import FaceOutlet, MarkerListener, lsl_offset  # noqa: E402
from dan_core.pipeline.measures import HeadPose  # noqa: E402
from dan_core.pipeline.study import StudyLinks  # noqa: E402

CLASSES = ("neutral", "happiness", "surprise", "sadness")


def test_lsl_stays_on_this_machine():
    cfg = Path(os.environ["LSLAPICFG"])
    text = cfg.read_text()
    assert cfg.name == "lsl_api.cfg" and "ResolveScope = machine" in text and "KnownPeers = {127.0.0.1}" in text


def _face(fid, probs, box=(10, 20, 30, 40), pose=None):
    probs = np.asarray(probs, np.float32)
    return FaceResult(fid, box, np.zeros((478, 2), np.float32), probs, CLASSES[int(probs.argmax())], float(probs.max()),
                      np.zeros((4, 7, 7), np.float32), np.zeros((2, 3), np.float32), np.zeros((8, 8, 3), np.uint8), pose)


def _resolve(prop: str, value: str, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = pylsl.resolve_byprop(prop, value, timeout=1.0)
        if found:
            return found[0]
    pytest.fail(f"no LSL stream with {prop}={value} on loopback")


def test_face_outlet_read_by_a_real_inlet():
    sid = f"test-{uuid.uuid4().hex[:8]}"
    outlet = FaceOutlet(CLASSES, 25.0, source_id=sid)
    info = _resolve("source_id", sid)
    inlet = pylsl.StreamInlet(info)
    full = inlet.info(timeout=5.0)
    assert (full.name(), full.type(), full.channel_count(), full.nominal_srate()) == ("dan-fer", "FacialExpression", 12, 25.0)
    assert full.channel_format() == pylsl.cf_float32
    ch = full.desc().child("channels").child("channel")
    labels, units = [], []
    while not ch.empty():
        labels.append(ch.child_value("label"))
        units.append(ch.child_value("unit"))
        ch = ch.next_sibling()
    assert labels == ["face_id", "x", "y", "w", "h", *CLASSES, "yaw", "pitch", "roll"]
    assert units[-4:] == ["probability", "degrees", "degrees", "degrees"]
    cl = full.desc().child("classes").child("class")
    order = []
    while not cl.empty():
        order.append(cl.child_value())
        cl = cl.next_sibling()
    assert order == list(CLASSES)
    inlet.open_stream(timeout=5.0)
    time.sleep(0.2)
    moment = time.monotonic()
    outlet.push(FrameResult(7, 0.28, (640, 480), [_face(1, [0.1, 0.7, 0.1, 0.1], pose=HeadPose(12.5, -3.0, 4.25)),
                                                  _face(2, [0.6, 0.2, 0.1, 0.1], (50, 60, 70, 80))]), moment)
    got = []
    deadline = time.monotonic() + 5.0
    while len(got) < 2 and time.monotonic() < deadline:
        sample, stamp = inlet.pull_sample(timeout=0.5)
        if sample is not None:
            got.append((sample, stamp))
    assert len(got) == 2 and outlet.samples == 2
    assert got[0][0] == pytest.approx([1, 10, 20, 30, 40, 0.1, 0.7, 0.1, 0.1, 12.5, -3.0, 4.25], abs=1e-6)
    assert got[1][0][:5] == [2, 50, 60, 70, 80] and all(math.isnan(v) for v in got[1][0][-3:])  # no pose: NaN
    assert got[0][1] == pytest.approx(moment + lsl_offset(), abs=0.002)  # stamped with the frame's moment, on LSL's clock


def test_markers_from_a_loopback_outlet_land_within_one_frame(tmp_path):
    """A stimulus program's marker lands on the frame recorded when it was sent (a 25 fps 'camera' in real time)."""
    stim = pylsl.StreamOutlet(pylsl.StreamInfo("stimuli", "Markers", 1, pylsl.IRREGULAR_RATE, pylsl.cf_string,
                                               f"stim-{uuid.uuid4().hex[:8]}"))
    log = MarkerLog(EventWriter(tmp_path / "rec.csv.events.csv"))
    listener = MarkerListener(functools.partial(log.at_moment, source="lsl")).start()
    try:
        deadline = time.monotonic() + 10.0
        while "stimuli" not in listener.streams and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "stimuli" in listener.streams
        sent = {}  # label -> (frame, where on the recording's clock it was sent)
        t0 = time.monotonic()
        for i in range(50):  # 2 s of frames at 25 fps, each frame's moment on the monotonic clock
            target = t0 + i / 25
            time.sleep(max(0.0, target - time.monotonic()))
            seen = time.monotonic()
            log.frame_seen(seen, i / 25, i)
            if i in (10, 30):
                time.sleep(0.013)  # between two frames (longer on a busy machine: the expected time is measured)
                moment = time.monotonic()
                stim.push_sample([f"stimulus {i}"])  # stamped now with LSL's clock by the sender
                sent[f"stimulus {i}"] = (i, i / 25 + (moment - seen))
        deadline = time.monotonic() + 3.0
        while listener.received < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        listener.stop()
    log.close()
    events = read_events(tmp_path / "rec.csv.events.csv")
    assert [e.label for e in events] == ["stimulus 10", "stimulus 30"]
    for e in events:
        frame, when = sent[e.label]
        assert e.source == "lsl" and abs(e.frame - frame) <= 1
        assert abs(e.time_s - when) < 0.04  # on the recording's clock, within one frame of when it was sent


def test_analyze_with_lsl_streams_faces_and_records_markers(tmp_path, media_dir, landmarker_path, capsys):
    """dan-fer analyze --lsl --lsl-markers on a real clip: an inlet reads our samples, a test outlet's marker is recorded."""
    import cv2

    from dan_core import cli

    clip = tmp_path / "clip.mp4"
    cap = cv2.VideoCapture(str(media_dir / "pexels_WolfgangLanger_emotions.mp4"))
    writer = None
    for _ in range(250):
        ok, img = cap.read()
        assert ok
        img = cv2.resize(img, (320, 180))
        if writer is None:
            writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"mp4v"), 25.0, (320, 180))
        writer.write(img)
    writer.release()
    cap.release()
    stim = pylsl.StreamOutlet(pylsl.StreamInfo("stimuli", "Markers", 1, pylsl.IRREGULAR_RATE, pylsl.cf_string,
                                               f"stim-{uuid.uuid4().hex[:8]}"))
    csv_path = tmp_path / "rec.csv"
    result: dict = {}

    def analyse():
        result["rc"] = cli.main(["analyze", str(clip), "--csv", str(csv_path), "--lsl", "--lsl-markers", "--json", "--no-progress",
                                 "--landmarker", str(landmarker_path)])

    runner = threading.Thread(target=analyse)
    runner.start()
    inlet = pylsl.StreamInlet(_resolve("type", "FacialExpression", 60.0))
    inlet.open_stream(timeout=10.0)
    samples = []
    deadline = time.monotonic() + 60.0
    pushed = False
    while runner.is_alive() and time.monotonic() < deadline:
        sample, _ = inlet.pull_sample(timeout=0.1)
        if sample is not None:
            samples.append(sample)
            if not pushed and stim.have_consumers():  # our listener has connected: send the stimulus onset
                stim.push_sample(["stimulus on"])
                pushed = True
    runner.join(60)
    out = capsys.readouterr().out
    assert result.get("rc") == 0
    assert samples and all(len(s) == 5 + 8 + 3 for s in samples)  # box, the shipped model's 8 FER+ classes, yaw pitch roll
    summary = json.loads(out)
    assert pushed and summary["events"]["count"] == 1
    events = read_events(tmp_path / "rec.csv.events.csv")
    assert events[0].label == "stimulus on" and events[0].source == "lsl" and 0 <= events[0].frame < 250
    meta = json.loads((tmp_path / "rec.csv.json").read_text())
    assert meta["summary"]["events"]["labels"] == {"stimulus on": 1}


def test_key_markers_need_a_recording_and_go_out_on_our_marker_outlet(tmp_path):
    study = StudyLinks(lsl=True)
    try:
        inlet = pylsl.StreamInlet(_resolve("source_id", study.marker_outlet.source_id))
        inlet.open_stream(timeout=5.0)
        time.sleep(0.2)
        with pytest.raises(Exception, match="press R"):
            study.marker_at_frame("1", 0.0, 0, source="key")
        study.start_recording(tmp_path / "r.csv")
        study.marker_at_frame("2 = stimulus off", 1.5, 37, source="key")
        labels = []
        deadline = time.monotonic() + 5.0
        while len(labels) < 2 and time.monotonic() < deadline:
            sample, _ = inlet.pull_sample(timeout=0.5)
            if sample is not None:
                labels.append(sample[0])
        assert labels == ["1", "2 = stimulus off"]
        summary = study.stop_recording()
        assert summary["count"] == 1
    finally:
        study.close()


def test_bench_times_the_lsl_outlets(media_dir, landmarker_path, capsys):
    """bench reports the outlets' own cost per frame (the README's row; under a millisecond on a quiet machine). The
    bound here only catches something pathological, such as a network lookup per frame: timings belong to benchmarks."""
    from dan_core import cli

    rc = cli.main(["bench", str(media_dir / "pexels_WolfgangLanger_emotions.mp4"), "--frames", "20", "--warmup", "2", "--lsl",
                   "--lsl-markers", "--json", "--landmarker", str(landmarker_path)])
    out, err = capsys.readouterr()
    assert rc == 0, err
    lsl = json.loads(out)["stages_ms"]["lsl"]
    assert 0 < lsl["median"] <= lsl["p95"] < 50.0

"""A study-grade record: every frame accounted for, a sidecar that says how the numbers were made, the same numbers
from the app's recording and from ``dan-fer analyze`` (real MediaPipe, ONNX Runtime and video files)."""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from dan_core import __version__, cli
from dan_core.paths import default_model_path
from dan_core.pipeline import Pipeline
from dan_core.pipeline.landmarks import sha256_of
from dan_core.pipeline.timeline import load_timeline, sidecar_path


def _clip_with_blank_frames(dest: Path, media_dir: Path, frames: int = 16, blank=range(6, 10)) -> Path:
    """``frames`` frames of the shared face video at 320x180, those in ``blank`` a grey wall (no face)."""
    cap = cv2.VideoCapture(str(media_dir / "pexels_WolfgangLanger_emotions.mp4"))
    writer = cv2.VideoWriter(str(dest), cv2.VideoWriter_fourcc(*"mp4v"), 25.0, (320, 180))
    for i in range(frames):
        ok, img = cap.read()
        assert ok
        writer.write(np.full((180, 320, 3), 128, np.uint8) if i in blank else cv2.resize(img, (320, 180)))
    writer.release()
    cap.release()
    return dest


def _run(args: list, capsys) -> tuple[int, str, str]:
    rc = cli.main([str(a) for a in args])
    out, err = capsys.readouterr()
    return rc, out, err


def test_every_frame_has_a_row_and_the_sidecar_says_how_it_was_made(tmp_path, media_dir, landmarker_path, capsys):
    clip = _clip_with_blank_frames(tmp_path / "clip.mp4", media_dir)
    out = tmp_path / "t.csv"
    rc, stdout, err = _run(["analyze", clip, "--csv", out, "--every", "2", "--blendshapes", "--smoothing", "0.3",
                            "--landmarker", landmarker_path, "--no-progress", "--json"], capsys)
    assert rc == 0, err
    t = load_timeline(out)
    assert list(t.frames.frame) == list(range(0, 16, 2))  # every processed frame, with a face or not
    assert list(t.frames.faces) == [1, 1, 1, 0, 0, 1, 1, 1] and t.frames.every_frame
    rows = list(csv.DictReader(out.read_text().splitlines()))
    blank = [r for r in rows if r["faces"] == "0"]
    assert [r["frame"] for r in blank] == ["6", "8"] and all(r["face_id"] == "" and r["yaw"] == "" for r in blank)
    face = next(r for r in rows if r["faces"] == "1")
    assert face["detection"] in ("ok", "small") and float(face["jawOpen"]) >= 0 and abs(float(face["yaw"])) < 60
    meta = json.loads(sidecar_path(out).read_text())
    assert meta["version"] == __version__ and meta["recorded_by"] == "dan-fer analyze" and meta["started"]
    ran = Path(meta["model"])  # the file that ran: the default model or its int8 twin (--precision auto)
    assert ran.parent == default_model_path().parent and ran.name in (meta["model_name"], f"{default_model_path().stem}_int8.onnx")
    assert meta["model_sha256"] == sha256_of(ran) and meta["landmarker_sha256"] == sha256_of(landmarker_path)
    assert meta["options"] == {"backend": "auto", "precision": "auto", "max_faces": 4, "smoothing": 0.3, "max_missed": 10, "mode": "video",
                               "threads": 0, "min_face_confidence": 0.5, "blendshapes": True, "every": 2}
    assert meta["source_fps"] == pytest.approx(25.0) and meta["source_size"] == [320, 180] and meta["source_frames"] == 16
    assert meta["frames"] == {"read": 16, "processed": 8, "skipped_every": 8, "dropped": 0, "longest_gap_frames": 0,
                              "longest_gap_s": 0.0, "longest_gap_at_s": None, "seeks": 0, "rows": 8}
    summary = json.loads(stdout)
    assert summary["accounting"]["processed"] == 8 and summary["frames_without_faces"] == 2


def test_frame_account_counts_what_a_live_view_dropped():
    """Frames taken from the source by number: the gaps are what the live pipeline dropped; a seek is not a gap."""
    from types import SimpleNamespace as NS

    from dan_core.pipeline.outputs import FrameAccount

    account = FrameAccount(fps=25.0)
    for i in (0, 1, 2, 5, 6, 20, 21):
        account.frame(NS(result=NS(index=i, time_s=i / 25, frame_size=(640, 360))))
    account.jumped()  # a seek back to the start
    for i in (0, 1, 3):
        account.frame(NS(result=NS(index=i, time_s=i / 25, frame_size=(640, 360))))
    totals = account.totals(rows=10)
    assert totals["processed"] == 10 and totals["dropped"] == 2 + 13 + 1 and totals["read"] == 22 + 4
    assert totals["longest_gap_frames"] == 13 and totals["longest_gap_s"] == pytest.approx(0.52)
    assert totals["longest_gap_at_s"] == pytest.approx(0.8) and totals["seeks"] == 1 and totals["skipped_every"] == 0


@pytest.mark.slow
def test_the_app_and_analyze_record_the_same_numbers(tmp_path, media_dir, landmarker_path, capsys):
    """The same video, the same options: the app's recording (its default settings; the live analysis, every frame handed
    in) and analyze's CSV are equal row for row, and so are the sidecars' options and hashes. (The app runs ONNX Runtime
    on one thread, so analyze is given --threads 1; its sidecar records 1 where analyze's default records 0.)"""
    from app.areas.settings import pipeline_config
    from app.state import AppSettings
    from dan_core.pipeline.live import LiveAnalysis
    from dan_core.pipeline.playback import Captured
    from dan_core.pipeline.render import RenderOptions
    from dan_core.pipeline.sources import open_source

    clip = _clip_with_blank_frames(tmp_path / "clip.mp4", media_dir, frames=24, blank=range(10, 13))
    from_analyze, from_app = tmp_path / "analyze.csv", tmp_path / "app.csv"
    rc, _, err = _run(["analyze", clip, "--csv", from_analyze, "--threads", "1", "--landmarker", landmarker_path,
                       "--no-progress"], capsys)
    assert rc == 0, err
    live = LiveAnalysis()
    live.set_pipeline(Pipeline(pipeline_config(AppSettings(landmarker=str(landmarker_path)))))
    live.start()
    try:
        source = open_source(clip)
        live.start_recording(from_app, source={"source": str(clip), "source_fps": source.fps, "source_frames": 24,
                                               "live": False})
        for frame in source:  # each frame in, and out, before the next: nothing dropped
            live.frames.put(Captured(frame, time.monotonic(), 1))
            deadline = time.monotonic() + 30
            while (update := live.take(RenderOptions(), generation=1, timeout=0.5)).shown is None:
                assert time.monotonic() < deadline
            assert update.shown.result.index == frame.index
        end = live.stop_recording()
        source.close()
    finally:
        live.stop()
        live.close()
    assert end.frames["processed"] == 24 and end.frames["dropped"] == 0
    assert from_app.read_text() == from_analyze.read_text()
    a, b = (json.loads(sidecar_path(p).read_text()) for p in (from_analyze, from_app))
    assert (b["recorded_by"], a["recorded_by"]) == ("dan-fer app", "dan-fer analyze")
    for key in ("options", "model_sha256", "landmarker_sha256", "source_size", "source_fps", "class_names", "version"):
        assert a[key] == b[key], key
    assert a["frames"]["processed"] == b["frames"]["processed"] == 24 and b["frames"]["rows"] == 24

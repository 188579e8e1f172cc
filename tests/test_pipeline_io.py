"""Timeline CSV durability, output checks, frame sources and the landmarker file search (no network)."""

from __future__ import annotations

import csv
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from types import SimpleNamespace as NS

import cv2
import numpy as np
import pytest

from dan_core.errors import DanFerError
from dan_core.pipeline import landmarks as lmk
from dan_core.pipeline.sources import list_cameras, open_source, read_image
from dan_core.pipeline.timeline import FIXED_COLUMNS, TimelineWriter, load_timeline, read_timeline, sidecar_path

ROOT = Path(__file__).resolve().parent.parent
NAMES = ("neutral", "happiness", "surprise")


@pytest.fixture(autouse=True)
def _no_network(monkeypatch):
    monkeypatch.setenv(lmk.NO_DOWNLOAD_ENV, "1")
    monkeypatch.delenv(lmk.ENV_VAR, raising=False)


def _result(index: int, n_faces: int = 1):
    faces = [NS(face_id=i + 1, box=(10 * i, 20, 30, 40), probs=np.array([0.2, 0.5, 0.3], np.float32), dominant="happiness",
                confidence=0.5) for i in range(n_faces)]
    return NS(index=index, time_s=index / 25, faces=faces)


# ----------------------------------------------------------------------------- timeline
def test_timeline_columns_rows_and_sidecar(tmp_path):
    path = tmp_path / "t.csv"
    with TimelineWriter(path, NAMES, meta={"source": "x.mp4", "fps": 25.0}) as w:
        w.write(_result(0, 2))
        w.write(_result(1, 0))  # a frame without faces: one row, faces 0, the face's columns empty
        w.write(_result(2, 1))
        assert w.rows == 4
    rows = list(csv.reader(path.read_text().splitlines()))
    assert rows[0] == [*FIXED_COLUMNS, *NAMES, "dominant", "confidence", "faces", "detection", "valence", "yaw", "pitch", "roll"]
    assert rows[1] == ["0.000", "0", "1", "0", "20", "30", "40", "0.2000", "0.5000", "0.3000", "happiness", "0.5000", "2", "ok",
                       "", "", "", ""]
    assert rows[3] == ["0.040", "1", *[""] * 10, "0", *[""] * 5]
    assert len(rows) == 5
    t = load_timeline(path)
    assert t.classes == list(NAMES) and list(t.cols["face_id"]) == [1, 2, 1] and t.bad_rows == 0
    assert list(t.frames.frame) == [0, 1, 2] and list(t.frames.faces) == [2, 0, 1] and t.frames.every_frame
    assert np.isnan(t.cols["yaw"]).all() and list(t.cols["detection"]) == ["ok"] * 3
    meta = t.meta
    for key in ("class_names", "source", "fps", "version", "started", "rows"):
        assert key in meta
    assert meta["rows"] == 4


def test_timeline_of_an_older_dan_fer_still_reads(tmp_path):
    """Files from before frame accounting, pose and valence (no faces, detection, valence, yaw, pitch, roll)."""
    path = tmp_path / "old.csv"
    path.write_text(",".join([*FIXED_COLUMNS, *NAMES, "dominant", "confidence"]) + "\n"
                    "0.000,0,1,0,20,30,40,0.2000,0.5000,0.3000,happiness,0.5000\n"
                    "0.080,2,1,0,20,30,40,0.6000,0.2000,0.2000,neutral,0.6000\n")
    t = load_timeline(path)
    assert t.rows == 2 and t.bad_rows == 0 and "yaw" not in t.cols and t.measures == list(NAMES)
    assert list(t.frames.frame) == [0, 2] and not t.frames.every_frame


def test_timeline_refuses_to_overwrite_without_force(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("precious\n")
    with pytest.raises(DanFerError, match="--force"):
        TimelineWriter(path, NAMES)
    assert path.read_text() == "precious\n"
    TimelineWriter(path, NAMES, force=True).close()
    assert path.read_text().startswith("time_s,")


def test_timeline_refuses_existing_sidecar(tmp_path):
    path = tmp_path / "t.csv"
    sidecar_path(path).write_text("{}")
    with pytest.raises(DanFerError, match="--force"):
        TimelineWriter(path, NAMES)
    assert not path.exists()


def test_timeline_bad_folders(tmp_path):
    with pytest.raises(DanFerError, match="does not exist"):
        TimelineWriter(tmp_path / "missing" / "t.csv", NAMES)
    afile = tmp_path / "file"
    afile.write_text("")
    with pytest.raises(DanFerError, match="not a folder"):
        TimelineWriter(afile / "t.csv", NAMES)


def test_timeline_unwritable_folder(tmp_path):
    if hasattr(os, "geteuid") and os.geteuid() == 0:  # root ignores permission bits: use a read-only file system
        if not Path("/sys/kernel").is_dir():
            pytest.skip("running as root without /sys to test an unwritable folder")
        with pytest.raises(DanFerError, match="not writable|Permission denied|Read-only"):
            TimelineWriter(Path("/sys") / "t.csv", NAMES)
        return
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        with pytest.raises(DanFerError, match="not writable"):
            TimelineWriter(ro / "t.csv", NAMES)
    finally:
        ro.chmod(0o700)


def test_timeline_path_with_spaces_and_non_ascii(tmp_path):
    folder = tmp_path / "Ergebnisse März 表情"
    folder.mkdir()
    with TimelineWriter(folder / "zeitlinie ü.csv", NAMES) as w:
        w.write(_result(0))
    assert read_timeline(folder / "zeitlinie ü.csv")[1]["frame"].tolist() == [0]


def test_timeline_flushes_within_a_second_without_more_writes(tmp_path):
    path = tmp_path / "t.csv"
    w = TimelineWriter(path, NAMES)
    try:
        w.write(_result(0))
        deadline = time.monotonic() + 3
        while path.read_text().count("\n") < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert path.read_text().count("\n") == 2
    finally:
        w.close()


def test_killed_writer_leaves_a_parseable_csv(tmp_path):
    """SIGKILL in the middle of writing: every line on disk is whole and the file reads back."""
    path = tmp_path / "killed.csv"
    script = textwrap.dedent(f"""
        import sys, time
        from types import SimpleNamespace as NS
        import numpy as np
        from dan_core.pipeline.timeline import TimelineWriter
        w = TimelineWriter({str(path)!r}, {NAMES!r}, flush_interval=0.05)
        i = 0
        while True:
            faces = [NS(face_id=k, box=(1, 2, 3, 4), probs=np.array([0.1, 0.6, 0.3]), dominant="happiness", confidence=0.6)
                     for k in range(4)]
            w.write(NS(index=i, time_s=i / 30, faces=faces))
            i += 1
            if i == 200:
                print("ready", flush=True)
            time.sleep(0.0005)
    """)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, env=env, cwd=ROOT)
    try:
        assert proc.stdout.readline().strip() == b"ready"
        time.sleep(0.4)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        proc.stdout.close()
    text = path.read_text()
    assert text.endswith("\n")  # whole lines only
    rows = list(csv.reader(text.splitlines()))
    assert len(rows) > 200 and all(len(r) == len(rows[0]) for r in rows)
    classes, cols, _ = read_timeline(path)
    assert classes == list(NAMES) and len(cols["frame"]) == len(rows) - 1


def test_read_timeline_ignores_a_cut_off_last_line(tmp_path):
    path = tmp_path / "t.csv"
    with TimelineWriter(path, NAMES) as w:
        w.write(_result(0))
    with path.open("a") as f:
        f.write("0.040,1,1,0,20,3")
    _, cols, _ = read_timeline(path)
    assert cols["frame"].tolist() == [0]
    bad = tmp_path / "other.csv"
    bad.write_text("a,b,c\n1,2,3\n")
    with pytest.raises(DanFerError, match="not a dan-fer timeline"):
        read_timeline(bad)


# ----------------------------------------------------------------------------- sources
def _write_video(path: Path, n: int, fourcc: str = "MJPG", size=(160, 120)) -> None:
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), 25.0, size)
    assert w.isOpened()
    for i in range(n):
        img = np.full((size[1], size[0], 3), (i * 5) % 255, np.uint8)
        cv2.putText(img, str(i), (10, 60), cv2.FONT_HERSHEY_SIMPLEX, 1.5, (255, 255, 255), 2)
        w.write(img)
    w.release()


def test_video_source_frames_times_and_seek(tmp_path):
    path = tmp_path / "clip ä.avi"
    _write_video(path, 30)
    with open_source(path) as src:
        assert src.fps == pytest.approx(25.0) and src.frame_count == 30 and not src.is_live
        frames = list(src)
        assert [f.index for f in frames] == list(range(30))
        assert frames[10].time_s == pytest.approx(0.4)
        assert frames[0].image_bgr.shape == (120, 160, 3)
        src.seek(0.8)
        assert next(iter(src)).index == 20


def test_truncated_video_stops_at_the_last_good_frame(tmp_path):
    path = tmp_path / "cut.avi"
    _write_video(path, 60)
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * 0.6)])
    with open_source(path) as src:
        frames = list(src)  # no exception
    assert 10 < len(frames) < 60


@pytest.mark.parametrize("content", [b"", b"not a video at all" * 100])
def test_unreadable_video_is_one_clear_error(tmp_path, content):
    path = tmp_path / "broken.mp4"
    path.write_bytes(content)
    with pytest.raises(DanFerError, match="broken.mp4"):
        open_source(path)


def test_missing_input_and_missing_camera():
    with pytest.raises(DanFerError, match="not found"):
        open_source("/nonexistent/video.mp4")
    with pytest.raises(DanFerError, match="camera 97 cannot be opened"):
        open_source("97")
    cams = list_cameras()
    assert isinstance(cams, list) and all(isinstance(i, int) and isinstance(n, str) for i, n in cams)


def test_images_alpha_grey_and_folders(tmp_path, media_dir):
    rgba = cv2.imread(str(media_dir / "mediapipe_testdata_sergey.png"), cv2.IMREAD_UNCHANGED)
    assert rgba.shape[2] == 4  # the test needs its alpha channel
    assert read_image(media_dir / "mediapipe_testdata_sergey.png").shape == rgba.shape[:2] + (3,)
    folder = tmp_path / "Bilder mit Leerzeichen é"
    folder.mkdir()
    grey = cv2.cvtColor(rgba[..., :3], cv2.COLOR_BGR2GRAY)
    cv2.imencode(".png", grey)[1].tofile(folder / "b grey.png")
    cv2.imencode(".png", rgba)[1].tofile(folder / "a alpha.png")
    (folder / "c broken.jpg").write_bytes(b"nope")
    (folder / "notes.txt").write_text("ignored")
    with open_source(folder) as src:
        frames = list(src)
        assert src.frame_count == 3 and len(src.skipped) == 1
    assert [f.index for f in frames] == [0, 1]
    assert all(f.image_bgr.shape == rgba.shape[:2] + (3,) for f in frames)
    with pytest.raises(DanFerError, match="cannot decode"):
        open_source(folder / "c broken.jpg")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DanFerError, match="no images"):
        open_source(empty)


# ----------------------------------------------------------------------------- landmarker file
@pytest.fixture
def no_shipped(monkeypatch, tmp_path):
    """As on a checkout without models/face_landmarker.task."""
    monkeypatch.setattr(lmk, "SHIPPED_LANDMARKER", tmp_path / "no-models" / lmk.LANDMARKER_FILE)


def test_landmarker_resolution_order(tmp_path, monkeypatch, landmarker_path, no_shipped):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    with pytest.raises(DanFerError, match="put it at .*face_landmarker.task"):
        lmk.resolve_landmarker(None)  # nothing anywhere, downloads off
    with pytest.raises(DanFerError, match="not found"):
        lmk.resolve_landmarker(tmp_path / "nope.task")
    assert lmk.resolve_landmarker(landmarker_path) == landmarker_path
    monkeypatch.setenv(lmk.ENV_VAR, str(landmarker_path))
    assert lmk.resolve_landmarker(None) == landmarker_path
    monkeypatch.setenv(lmk.ENV_VAR, str(tmp_path / "gone.task"))
    with pytest.raises(DanFerError, match=lmk.ENV_VAR):
        lmk.resolve_landmarker(None)
    monkeypatch.delenv(lmk.ENV_VAR)
    cached = lmk.cache_dir() / lmk.LANDMARKER_FILE
    cached.parent.mkdir(parents=True)
    shutil.copy(landmarker_path, cached)
    assert lmk.resolve_landmarker(None) == cached


def test_corrupt_cached_landmarker_is_detected(tmp_path, monkeypatch, landmarker_path, no_shipped):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    cached = lmk.cache_dir() / lmk.LANDMARKER_FILE
    cached.parent.mkdir(parents=True)
    data = bytearray(landmarker_path.read_bytes())
    data[1000] ^= 0xFF
    cached.write_bytes(bytes(data))
    with pytest.raises(DanFerError, match="corrupt \\(sha256 mismatch"):
        lmk.resolve_landmarker(None)
    assert not cached.exists() and cached.with_suffix(".corrupt").exists()


def test_download_is_verified(tmp_path, monkeypatch, landmarker_path, no_shipped):
    """A download from a local file:// address (no network): good bytes land in the cache, bad ones never do."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(lmk, "LANDMARKER_URL", landmarker_path.resolve().as_uri())
    got = lmk.resolve_landmarker(None, download=True)
    assert got == lmk.cache_dir() / lmk.LANDMARKER_FILE and lmk.sha256_of(got) == lmk.LANDMARKER_SHA256
    got.unlink()
    wrong = tmp_path / "wrong.task"
    wrong.write_bytes(b"x" * 1000)
    monkeypatch.setattr(lmk, "LANDMARKER_URL", wrong.as_uri())
    with pytest.raises(DanFerError, match="sha256"):
        lmk.resolve_landmarker(None, download=True)
    assert list(lmk.cache_dir().iterdir()) == []  # no partial or bad file left behind
    monkeypatch.setattr(lmk, "LANDMARKER_URL", (tmp_path / "missing.task").as_uri())
    with pytest.raises(DanFerError, match="cannot download"):
        lmk.resolve_landmarker(None, download=True)


def test_corrupt_landmarker_file_is_one_clear_error(tmp_path, landmarker_path):
    bad = tmp_path / "face_landmarker.task"
    bad.write_bytes(landmarker_path.read_bytes()[:50000])
    with pytest.raises(DanFerError, match="not a usable face landmarker model .*sha256"):
        lmk.FaceLandmarks(bad)


def test_template_derivation_reproduces_the_shipped_template(fer_dir, landmarker_path):
    """A small sample of FER training faces lands close to assets/ferplus_template.json."""
    import json

    from dan_core.data.templates import dataset_template_path
    from dan_core.pipeline.derive_template import derive_template

    with np.load(fer_dir / "fer2013_train.npz") as d:
        images = d["images"][::950][:30]
    result = derive_template(images, landmarker_path)
    assert result["images_used"] >= 20
    shipped = np.asarray(json.loads(dataset_template_path("ferplus").read_text())["points"])
    np.testing.assert_allclose(np.asarray(result["points"]), shipped, atol=0.04)

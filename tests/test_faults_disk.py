"""Fault suite, part 4: full disks and kills while recording.

A full disk is a real one where the machine allows it: a 20 KB tmpfs (root and mount permission,
as on the development and CI machines). Everywhere else (and here too) the same cases also run
under RLIMIT_FSIZE, which makes writes beyond a size fail ("File too large") the same way.
"""

from __future__ import annotations

import json
import logging
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace as NS

import numpy as np
import pytest

from dan_core.errors import DanFerError
from dan_core.pipeline import videofile
from dan_core.pipeline.recorder import AnnotatedWriter
from dan_core.pipeline.timeline import TimelineWriter, load_timeline, sidecar_path

pytestmark = [pytest.mark.faults, pytest.mark.skipif(sys.platform == "win32", reason="POSIX file-size limits and tmpfs")]

ROOT = Path(__file__).resolve().parent.parent
VIDEO = "pexels_WolfgangLanger_emotions.mp4"
NAMES = ("neutral", "happiness", "surprise")
FULL = ("No space left on device", "File too large", "File size limit exceeded")  # a full tmpfs; beyond RLIMIT_FSIZE


def _mount_tmpfs(folder: Path, size: str) -> bool:
    if os.geteuid() != 0 or not shutil.which("mount"):
        return False
    return subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], capture_output=True).returncode == 0


@pytest.fixture(params=["tmpfs", "rlimit"])
def small_disk(request, tmp_path):
    """(folder, limit): write there until it is full. tmpfs: a 20 KB filesystem; rlimit: files may not exceed ``limit`` bytes."""
    folder = tmp_path / "small disk"
    folder.mkdir()
    if request.param == "tmpfs":
        if not _mount_tmpfs(folder, "20k"):
            pytest.skip("mounting a tmpfs is not permitted here (the rlimit variant covers it)")
        try:
            yield NS(folder=folder, limit=None, kind="tmpfs")
        finally:
            subprocess.run(["umount", "-l", str(folder)], capture_output=True)
    else:
        yield NS(folder=folder, limit=20_000, kind="rlimit")


def _limited(limit: int | None):
    """preexec_fn for a child whose files may not grow beyond ``limit`` bytes (EFBIG instead of SIGXFSZ)."""
    if limit is None:
        return None

    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


@pytest.fixture(scope="module")
def cache_home(tmp_path_factory) -> Path:
    """A cache folder whose matplotlib font list already exists: under RLIMIT_FSIZE it could not be written."""
    cache = tmp_path_factory.mktemp("cache")
    subprocess.run([sys.executable, "-c", "import matplotlib.font_manager"], env={**os.environ, "XDG_CACHE_HOME": str(cache)},
                   check=True, capture_output=True, timeout=300)
    return cache


def _env(cache_home: Path, landmarker_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DAN_FER_DEBUG", videofile.FFMPEG_ENV, "QT_QPA_PLATFORM_PLUGIN_PATH",
                                                               "MPLCONFIGDIR")}
    env.update(PYTHONPATH=str(ROOT), DAN_FER_NO_DOWNLOAD="1", DAN_FER_LANDMARKER=str(landmarker_path),
               XDG_CACHE_HOME=str(cache_home), QT_QPA_PLATFORM="offscreen")
    return env


def _whole_rows(csv_path: Path) -> int:
    data = csv_path.read_bytes()
    assert data.endswith(b"\n"), "the CSV ends in half a line"
    t = load_timeline(csv_path)
    assert t.bad_rows == 0
    return t.rows


def _one_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one line, got:\n{err}"
    return lines[0]


# ----------------------------------------------------------------------------- the timeline writer alone
def _row(i: int) -> NS:
    face = NS(face_id=1, box=(10, 20, 30, 40), probs=np.array([0.2, 0.5, 0.3], np.float32), dominant="happiness", confidence=0.5)
    return NS(index=i, time_s=i / 30, faces=[face])


@contextmanager
def _file_size_limit(limit: int | None):
    """This process's files may not grow beyond ``limit`` bytes (EFBIG instead of SIGXFSZ) within the block."""
    if limit is None:
        yield
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    old = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, old)


def test_timeline_on_a_full_disk_stops_within_a_second_and_keeps_whole_rows(small_disk):
    path = small_disk.folder / "t.csv"
    w = TimelineWriter(path, NAMES)
    queued_at = []
    with _file_size_limit(small_disk.limit), pytest.raises(DanFerError) as info:
        for i in range(30 * 30):  # 30 rows a second, like a camera; 20 KB are full after about 8 s
            w.write(_row(i))
            queued_at.append(time.monotonic())
            time.sleep(1 / 30)
    raised_at = time.monotonic()
    text = str(info.value)
    assert str(path) in text and any(c in text for c in FULL) and f"the {w.rows_written} rows" in text
    first_lost = queued_at[w.rows_written]  # the first row that never reached the disk
    assert raised_at - first_lost < 1.6  # flushed within a second, the failure seen at the next write
    w.close()  # the caller has the error: close neither repeats it nor hides it behind a sidecar error
    w.close()
    assert _whole_rows(path) == w.rows_written > 100
    assert not [p.name for p in small_disk.folder.iterdir() if p.name.endswith(".tmp")]


# ----------------------------------------------------------------------------- dan-fer analyze (bugs 3 and 4)
def test_analyze_csv_onto_a_full_disk_is_one_line_and_whole_rows(tmp_path, cache_home, small_disk, landmarker_path, media_dir):
    csv_path = small_disk.folder / "x.csv"
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "dan_core", "analyze", str(media_dir / VIDEO), "--csv", str(csv_path),
                           "--no-progress", "--json"], env=_env(cache_home, landmarker_path), capture_output=True, text=True,
                          timeout=600, preexec_fn=_limited(small_disk.limit))
    took = time.monotonic() - t0
    assert proc.returncode == 2 and proc.stdout == ""  # no summary claims success
    line = _one_line(proc.stderr)
    assert line.startswith(f"dan-fer analyze: error: cannot write {csv_path}: ") and any(c in line for c in FULL)
    rows = _whole_rows(csv_path)
    assert f"the {rows} rows written before are kept" in line and 50 < rows < 300
    assert not [p for p in small_disk.folder.iterdir() if p.name.endswith(".tmp")]
    assert took < 90  # it stopped; all 472 frames take far longer on this machine


def test_annotated_video_onto_a_full_disk_is_one_line_and_playable(tmp_path, cache_home, small_disk, landmarker_path, media_dir,
                                                                   count_frames):
    limit = None if small_disk.limit is None else 200_000
    if small_disk.kind == "tmpfs":  # room for a few frames
        subprocess.run(["mount", "-o", "remount,size=200k", str(small_disk.folder)], check=True, capture_output=True)
    video = small_disk.folder / "a.mp4"
    csv_path = tmp_path / "t.csv"
    proc = subprocess.run([sys.executable, "-m", "dan_core", "analyze", str(media_dir / VIDEO), "--csv", str(csv_path),
                           "--annotated", str(video), "--no-progress"], env=_env(cache_home, landmarker_path),
                          capture_output=True, text=True, timeout=600, preexec_fn=_limited(limit))
    assert proc.returncode == 2 and "timeline:" not in proc.stdout  # was: exit 0, a summary naming the file
    line = _one_line(proc.stderr)  # was: 442 OpenCV "Failed to write frame" lines
    assert line.startswith(f"dan-fer analyze: error: cannot write {video}: ") and any(c in line for c in FULL)
    assert 1 <= count_frames(video) < 200  # what reached the disk plays
    assert _whole_rows(csv_path) >= 1 and "error" in json.loads(sidecar_path(csv_path).read_text())["summary"]


# ----------------------------------------------------------------------------- the app (bug 5)
def test_app_recording_onto_a_full_disk_says_it_stopped(tmp_path, cache_home, small_disk, landmarker_path, media_dir):
    csv_path = small_disk.folder / "rec.csv"
    proc = subprocess.run([sys.executable, "-m", "app", "--source", str(media_dir / VIDEO), "--record", str(csv_path),
                           "--exit-after", "15", "--settings-file", str(tmp_path / "s.ini")], env=_env(cache_home, landmarker_path),
                          capture_output=True, text=True, timeout=600, preexec_fn=_limited(small_disk.limit))
    assert proc.returncode == 1  # a problem was shown in the window
    rows = _whole_rows(csv_path)
    problems = [line for line in proc.stderr.splitlines() if line.startswith("dan-fer app: record:")]
    assert len(problems) == 1 and str(csv_path) in problems[0] and any(c in problems[0] for c in FULL)
    assert "saved" not in proc.stdout.lower()  # was: "Recording saved ... (336 rows)"
    assert f"keeps its first {rows} rows" in proc.stdout and 50 < rows < 300


# ----------------------------------------------------------------------------- kill -9
def test_annotated_video_survives_kill_9(tmp_path, cache_home, landmarker_path, media_dir, count_frames):
    """The H.264 file is fragmented: what was written before SIGKILL plays, and the CSV reads back."""
    csv_path, video = tmp_path / "t.csv", tmp_path / "a.mp4"
    proc = subprocess.Popen([sys.executable, "-m", "dan_core", "analyze", str(media_dir / VIDEO), "--csv", str(csv_path),
                             "--annotated", str(video), "--no-progress"], env=_env(cache_home, landmarker_path),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 240
        while not (csv_path.is_file() and csv_path.read_bytes().count(b"\n") > 60):
            assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read()
            time.sleep(0.1)
        proc.kill()
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stderr.close()
    time.sleep(1.0)  # FFmpeg sees the end of its input and finishes the file on its own
    rows = _whole_rows(csv_path)
    assert count_frames(video) >= rows - 60  # at most a couple of seconds behind the CSV


# ----------------------------------------------------------------------------- the writer itself
def _frame(i: int) -> np.ndarray:
    img = np.zeros((120, 161, 3), np.uint8)  # an odd width: H.264's 4:2:0 needs padding
    img[:, : (i * 7) % 161] = (40, 160, 240)
    return img


def test_annotated_video_is_h264_that_plays(tmp_path, count_frames):
    import cv2

    w = AnnotatedWriter(tmp_path / "a.mp4", 25.0)
    for i in range(30):
        w.write(_frame(i))
    w.close()
    assert w.encoder == "H.264 (FFmpeg)"
    cap = cv2.VideoCapture(str(tmp_path / "a.mp4"))
    fourcc = int(cap.get(cv2.CAP_PROP_FOURCC)).to_bytes(4, "little").decode()
    cap.release()
    assert fourcc.lower() in ("avc1", "h264") and count_frames(tmp_path / "a.mp4") == 30


def test_opencv_fallback_is_announced_once(tmp_path, monkeypatch, caplog, count_frames):
    monkeypatch.setenv(videofile.FFMPEG_ENV, "opencv")  # as where imageio-ffmpeg is missing
    monkeypatch.setattr(videofile, "_announced", False)
    with caplog.at_level(logging.WARNING, logger=videofile.__name__):
        for name in ("a.mp4", "b.mp4"):
            w = AnnotatedWriter(tmp_path / name, 25.0)
            for i in range(10):
                w.write(_frame(i))
            w.close()
            assert w.encoder == "mp4v (OpenCV)" and count_frames(tmp_path / name) == 10
    assert len(caplog.records) == 1 and "imageio-ffmpeg" in caplog.text and "OpenCV" in caplog.text


# ----------------------------------------------------------------------------- dan-fer batch
def test_batch_onto_a_full_disk_names_each_failed_video(tmp_path, cache_home, small_disk, landmarker_path, make_clip):
    """Each video that could not be written is its own error (also in --json); a summary that does not fit is one
    line after them; no empty .tmp is left behind (was: only "cannot write full/summary.csv", and a 0-byte .tmp)."""
    videos = [make_clip(tmp_path / f"v{i}.mp4", 40 * i, 60) for i in range(3)]
    limit = None if small_disk.limit is None else 3000  # rlimit: every CSV outgrows it part way
    proc = subprocess.run([sys.executable, "-m", "dan_core", "batch", *map(str, videos), "--out-dir", str(small_disk.folder),
                           "--workers", "1", "--no-progress", "--json"], env=_env(cache_home, landmarker_path),
                          capture_output=True, text=True, timeout=600, preexec_fn=_limited(limit))
    report = json.loads(proc.stdout)  # was: no output at all
    assert report["failed"] >= 1 and set(report["errors"]) <= {str(v) for v in videos}
    for video, error in report["errors"].items():
        assert "cannot write" in error and any(c in error for c in FULL), (video, error)
    leftovers = [p.name for p in small_disk.folder.iterdir() if p.name.endswith(".tmp")]
    assert not leftovers  # was: summary.csv.tmp, 0 bytes
    if small_disk.kind == "tmpfs":  # 20 KB: not even the summary fits
        assert proc.returncode == 2 and report["summary"] is None and "summary.csv" in report["summary_error"]
        line = _one_line(proc.stderr)
        assert line.startswith(f"dan-fer batch: error: cannot write {small_disk.folder / 'summary.csv'}: ")
    else:
        assert proc.returncode == 1 and proc.stderr == "" and report["failed"] == 3
        assert report["summary"] == str(small_disk.folder / "summary.csv")


# ----------------------------------------------------------------------------- dan-fer export
@pytest.mark.parametrize("suffix", [".onnx", ".pt"])
def test_export_onto_a_full_disk_leaves_no_partial_model(tmp_path, cache_home, small_disk, landmarker_path, suffix):
    from dan_core.model.dan import DAN, DANConfig
    from dan_core.training.checkpoint import save_model

    ckpt = tmp_path / "tiny.pt"
    save_model(DAN(DANConfig(num_heads=2, input_size=32, color="gray")), ckpt)
    out = small_disk.folder / f"m{suffix}"
    proc = subprocess.run([sys.executable, "-m", "dan_core", "export", str(ckpt), "--out", str(out)],
                          env=_env(cache_home, landmarker_path), capture_output=True, text=True, timeout=600,
                          preexec_fn=_limited(small_disk.limit))
    line = _one_line(proc.stderr)
    assert proc.returncode == 2 and line.startswith(f"dan-fer export: error: cannot write {out}: ") and any(c in line for c in FULL)
    assert list(small_disk.folder.iterdir()) == []  # was: a partial m.onnx that no loader can read

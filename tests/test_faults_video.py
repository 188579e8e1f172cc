"""Fault suite, part 3: broken videos and signals, run as real processes (what a user's terminal shows)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dan_core.pipeline.timeline import read_timeline, sidecar_path

pytestmark = pytest.mark.faults

ROOT = Path(__file__).resolve().parent.parent
VIDEO = "pexels_WolfgangLanger_emotions.mp4"


def _env(tmp_path: Path, landmarker_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DAN_FER_DEBUG", "OPENCV_FFMPEG_LOGLEVEL")}
    env.update(PYTHONPATH=str(ROOT), DAN_FER_NO_DOWNLOAD="1", DAN_FER_LANDMARKER=str(landmarker_path),
               XDG_CACHE_HOME=str(tmp_path / "cache"), QT_QPA_PLATFORM="offscreen")
    env.pop("QT_QPA_PLATFORM_PLUGIN_PATH", None)
    return env


def _ffmpeg_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("[") and " @ 0x" in line]


@pytest.fixture(scope="module")
def broken_videos(tmp_path_factory, media_dir) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("broken")
    data = (media_dir / VIDEO).read_bytes()
    videos = {"empty": b"", "truncated": data[:300_000], "headless": data[1000:400_000]}
    out = {}
    for name, content in videos.items():
        out[name] = folder / f"{name}.mp4"
        out[name].write_bytes(content)
    return out


@pytest.mark.parametrize("name", ["empty", "headless"])
def test_unopenable_video_is_one_line_without_ffmpeg_chatter(tmp_path, landmarker_path, broken_videos, name):
    proc = subprocess.run([sys.executable, "-m", "dan_core", "analyze", str(broken_videos[name]), "--csv", str(tmp_path / "t.csv"),
                           "--no-progress"], env=_env(tmp_path, landmarker_path), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [f"dan-fer analyze: error: cannot open video {broken_videos[name]} "
                                        "(corrupt, empty or an unsupported format)"]


def test_truncated_video_says_it_once_and_keeps_the_rows(tmp_path, landmarker_path, broken_videos):
    csv_path = tmp_path / "t.csv"
    proc = subprocess.run([sys.executable, "-m", "dan_core", "analyze", str(broken_videos["truncated"]), "--csv", str(csv_path),
                           "--no-progress"], env=_env(tmp_path, landmarker_path), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert _ffmpeg_lines(proc.stderr) == [] and proc.stderr.strip() == ""
    notes = [line for line in proc.stdout.splitlines() if "truncated or corrupt" in line]
    assert len(notes) == 1 and "ended at frame" in notes[0]
    _, cols, _ = read_timeline(csv_path)
    assert len(cols["frame"]) > 20


def test_app_with_a_broken_video_shows_one_line_without_ffmpeg_chatter(tmp_path, landmarker_path, broken_videos):
    proc = subprocess.run([sys.executable, "-m", "app", "--source", str(broken_videos["empty"]), "--exit-after", "0.5",
                           "--settings-file", str(tmp_path / "s.ini")], env=_env(tmp_path, landmarker_path), capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 1
    assert _ffmpeg_lines(proc.stderr) == []
    ours = [line for line in proc.stderr.splitlines() if line.startswith("dan-fer app:")]
    assert len(ours) == 1 and "cannot open video" in ours[0]


def _wait_for_rows(csv_path: Path, proc: subprocess.Popen, rows: int, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the process ended early ({proc.returncode}): {proc.stderr.read()}")
        if csv_path.is_file() and csv_path.read_bytes().count(b"\n") > rows:
            return
        time.sleep(0.1)
    raise AssertionError(f"no {rows} rows in {csv_path} within {timeout} s")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP], ids=["SIGTERM", "SIGINT", "SIGHUP"])
def test_analyze_stopped_by_a_signal_finishes_its_files(tmp_path, landmarker_path, media_dir, sig, count_frames):
    """kill PID (SIGTERM) and a closed terminal (SIGHUP) do what Ctrl+C does: summary, totals in the sidecar, a playable video."""
    csv_path, video = tmp_path / "t.csv", tmp_path / "a.mp4"
    proc = subprocess.Popen([sys.executable, "-m", "dan_core", "analyze", str(media_dir / VIDEO), "--csv", str(csv_path),
                             "--annotated", str(video), "--json", "--no-progress"], env=_env(tmp_path, landmarker_path),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for_rows(csv_path, proc, 10)
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 128 + sig, err
    summary = json.loads(out)
    assert summary["interrupted"] is True and summary["signal"] == sig.name and 10 <= summary["frames"] < 470
    meta = json.loads(sidecar_path(csv_path).read_text())
    assert meta["rows"] == summary["rows"] and meta["summary"]["signal"] == sig.name and "finished" in meta
    _, cols, _ = read_timeline(csv_path)
    assert len(cols["frame"]) == summary["rows"] and csv_path.read_bytes().endswith(b"\n")
    assert count_frames(video) == summary["frames"]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_app_stopped_by_a_signal_finishes_the_recording(tmp_path, landmarker_path, media_dir, sig):
    csv_path = tmp_path / "rec.csv"
    proc = subprocess.Popen([sys.executable, "-m", "app", "--source", str(media_dir / VIDEO), "--record", str(csv_path),
                             "--exit-after", "120", "--settings-file", str(tmp_path / "s.ini")],
                            env=_env(tmp_path, landmarker_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for_rows(csv_path, proc, 5)
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 128 + sig, err  # SIGHUP was: killed at once, no totals
    assert sig.name in err and "recording saved" in out.lower()
    meta = json.loads(sidecar_path(csv_path).read_text())
    _, cols, _ = read_timeline(csv_path)
    assert meta["rows"] == len(cols["frame"]) >= 5 and "finished" in meta

"""dan-fer batch: worker processes over real clips, a corrupt file among them, resume after an interruption."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import pytest

from dan_core import cli
from dan_core.commands.batch import analyze_video, collect_inputs, is_complete, output_names

VIDEO = "pexels_WolfgangLanger_emotions.mp4"


@pytest.fixture(scope="module")
def clips(tmp_path_factory, media_dir) -> Path:
    """Two short real clips (different stretches of the face video) in a folder, and a corrupt .mp4 beside them."""

    folder = tmp_path_factory.mktemp("videos")
    for name, start in (("a.mp4", 0), ("b.mp4", 100)):
        _write_clip(media_dir / VIDEO, folder / name, start, 15)
    (folder / "broken.mp4").write_bytes(os.urandom(4096))  # a video name, not a video
    return folder


def _write_clip(source: Path, dest: Path, start: int, frames: int) -> None:
    """``frames`` frames of ``source`` from frame ``start``, at 320x180, as an mp4v file."""
    import cv2

    cap = cv2.VideoCapture(str(source))
    cap.set(cv2.CAP_PROP_POS_FRAMES, start)
    writer = cv2.VideoWriter(str(dest), cv2.VideoWriter_fourcc(*"mp4v"), 25.0, (320, 180))
    for _ in range(frames):
        ok, img = cap.read()
        assert ok
        writer.write(cv2.resize(img, (320, 180)))
    writer.release()
    cap.release()


def _summary(out_dir: Path) -> list[dict]:
    with open(out_dir / "summary.csv", newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_inputs_from_folders_lists_and_files(tmp_path, clips):
    listing = tmp_path / "list.txt"
    listing.write_text(f"# study 1\n{clips / 'a.mp4'}\n\n{clips / 'missing.mp4'}\n")
    videos = collect_inputs([str(listing), str(clips), str(clips / "a.mp4")])
    assert [v.name for v in videos] == ["a.mp4", "missing.mp4", "b.mp4", "broken.mp4"]  # no repeats, input order
    other = tmp_path / "x" / "a.mp4"
    names = [p.name for p in output_names([clips / "a.mp4", other], tmp_path)]
    assert all(n.startswith("a-") and n.endswith(".csv") and len(n) == len("a-12345678.csv") for n in names)
    assert names[0] != names[1] and output_names([other], tmp_path)[0].name == names[1]  # each video's own name


def test_batch_with_a_corrupt_file_then_resume(tmp_path, clips, landmarker_path, capsys):
    out = tmp_path / "out"
    listing = tmp_path / "more.txt"
    listing.write_text(f"{tmp_path / 'missing.mp4'}\n")
    args = ["batch", str(clips), str(listing), "--out-dir", str(out), "--workers", "2", "--json", "--no-progress",
            "--landmarker", str(landmarker_path)]
    rc = cli.main(args)
    report = json.loads(capsys.readouterr().out)
    assert rc == 1  # some failed: said in the status, the others are done
    assert report["videos"] == 4 and report["analysed"] == 2 and report["failed"] == 2 and report["workers"] == 2
    assert report["threads_per_worker"] == max(1, (os.cpu_count() or 1) // 2)
    assert report["frames"] == 30
    rows = _summary(out)
    by_video = {}
    for r in rows:
        by_video.setdefault(Path(r["video"]).name, []).append(r)
    assert by_video["broken.mp4"][0]["status"] == "error" and by_video["broken.mp4"][0]["error"]
    assert "missing.mp4" in by_video and by_video["missing.mp4"][0]["status"] == "error"
    for name in ("a.mp4", "b.mp4"):
        face = by_video[name][0]
        assert face["status"] == "ok" and face["frames"] == "15" and int(face["frames_with_face"]) >= 12
        assert float(face["duration_s"]) == pytest.approx(0.6, abs=0.05)
        shares = [float(v) for k, v in face.items() if k.startswith("share_")]
        means = [float(v) for k, v in face.items() if k.startswith("mean_")]
        assert len(shares) == len(means) == 8 and sum(shares) == pytest.approx(1.0, abs=1e-3)
        assert sum(means) == pytest.approx(1.0, abs=0.01)
        assert is_complete(out / face["csv"], clips / name)
    # an interrupted run leaves b's CSV cut short with a sidecar that never got its totals: the rerun does b again, only b
    a_csv, b_csv = output_names([clips / "a.mp4", clips / "b.mp4"], out)
    side = b_csv.with_name(b_csv.name + ".json")
    meta = json.loads(side.read_text())
    for key in ("finished", "rows", "summary"):
        meta.pop(key)
    side.write_text(json.dumps(meta))
    b_csv.write_text("".join(b_csv.read_text().splitlines(keepends=True)[:4]))
    a_mtime = a_csv.stat().st_mtime_ns
    assert not is_complete(b_csv, clips / "b.mp4")
    rc = cli.main(args)
    report = json.loads(capsys.readouterr().out)
    assert report["skipped_complete"] == 1 and report["analysed"] == 1 and report["frames"] == 15
    assert a_csv.stat().st_mtime_ns == a_mtime and is_complete(b_csv, clips / "b.mp4")
    assert len(b_csv.read_text().splitlines()) > 4
    assert sum(r["status"] == "ok" for r in _summary(out)) >= 2


def test_analyze_video_is_a_plain_function(tmp_path, clips, landmarker_path):
    done = []
    result = analyze_video(clips / "a.mp4", tmp_path / "a.csv", {"landmarker": str(landmarker_path), "threads": 1},
                           progress=done.append)
    assert result["status"] == "ok" and result["frames"] == 15 and sum(done) == 15
    assert is_complete(tmp_path / "a.csv", clips / "a.mp4") and not is_complete(tmp_path / "a.csv", clips / "b.mp4")


def test_batch_killed_overnight_resumes_where_it_stopped(tmp_path, clips, media_dir, landmarker_path):
    """A real batch process is killed (SIGKILL, workers too) during its third video; the rerun does only that one."""
    import shutil
    import signal
    import subprocess
    import sys
    import time


    videos = tmp_path / "videos"
    videos.mkdir()
    shutil.copy(clips / "a.mp4", videos / "1.mp4")
    shutil.copy(clips / "b.mp4", videos / "2.mp4")
    _write_clip(media_dir / VIDEO, videos / "3.mp4", 0, 450)
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "dan_core.cli", "batch", str(videos), "--out-dir", str(out), "--workers", "1", "--no-progress",
           "--landmarker", str(landmarker_path)]
    root = Path(__file__).resolve().parent.parent
    proc = subprocess.Popen(cmd, cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    first, second, third = output_names(sorted(videos.iterdir()), out)
    deadline = time.monotonic() + 180
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if third.exists() and len(third.read_text().splitlines()) > 20:
                break
            time.sleep(0.1)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the batch and its worker, as a power cut would
        proc.wait(30)
    assert is_complete(first, videos / "1.mp4") and is_complete(second, videos / "2.mp4") and not is_complete(third, videos / "3.mp4")
    assert not (out / "summary.csv").exists()
    done_before = {p: p.stat().st_mtime_ns for p in (first, second)}
    rerun = subprocess.run([*cmd, "--json"], cwd=root, capture_output=True, text=True, timeout=300)
    report = json.loads(rerun.stdout)
    assert rerun.returncode == 0 and report["skipped_complete"] == 2 and report["analysed"] == 1 and report["frames"] == 450
    assert {p: p.stat().st_mtime_ns for p in (first, second)} == done_before
    assert is_complete(third, videos / "3.mp4") and len(third.read_text().splitlines()) == 451
    assert [r["status"] for r in _summary(out)] == ["ok", "ok", "ok"]

"""Fault suite, part 5: dan-fer batch against same-named videos, changed inputs, kills and signals (real processes)."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dan_core import cli
from dan_core.commands.batch import analyze_video, is_complete, output_names
from dan_core.pipeline.timeline import sidecar_path

pytestmark = [pytest.mark.faults, pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals and /proc")]

ROOT = Path(__file__).resolve().parent.parent


def _summary(out_dir: Path) -> list[dict]:
    with open(out_dir / "summary.csv", newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _batch(args: list, capsys) -> tuple[int, dict]:
    rc = cli.main(["batch", *map(str, args), "--json", "--no-progress"])
    return rc, json.loads(capsys.readouterr().out)


def _env(landmarker_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DAN_FER_DEBUG", "QT_QPA_PLATFORM_PLUGIN_PATH")}
    env.update(PYTHONPATH=str(ROOT), DAN_FER_NO_DOWNLOAD="1", DAN_FER_LANDMARKER=str(landmarker_path))
    return env


@pytest.fixture(scope="module")
def same_names(tmp_path_factory, make_clip) -> tuple[Path, Path]:
    """K/a/clip.mp4 and K/b/clip.mp4: two different stretches of the face video with the same file name."""
    root = tmp_path_factory.mktemp("K")
    (root / "a").mkdir()
    (root / "b").mkdir()
    return make_clip(root / "a" / "clip.mp4", 0, 12), make_clip(root / "b" / "clip.mp4", 300, 20)


def test_videos_with_the_same_name_keep_their_own_results(tmp_path, same_names, landmarker_path, capsys):
    """Bug 1: b alone, then a and b: a is analysed (not "already complete" with b's numbers), each row holds its own video."""
    a, b = same_names
    out = tmp_path / "R"
    rc, report = _batch([b, "--out-dir", out, "--workers", "1", "--landmarker", landmarker_path], capsys)
    assert rc == 0 and report["analysed"] == 1
    rc, report = _batch([a, b, "--out-dir", out, "--workers", "1", "--landmarker", landmarker_path], capsys)
    assert rc == 0 and report["analysed"] == 1 and report["skipped_complete"] == 1  # was: 0 analysed, 2 "complete"
    rows = {r["video"]: r for r in _summary(out)}
    assert set(rows) == {str(a), str(b)}
    for video, frames in ((a, 12), (b, 20)):
        row = rows[str(video)]
        meta = json.loads(sidecar_path(out / row["csv"]).read_text())
        assert row["status"] == "ok" and meta["source"] == str(video) and row["frames"] == str(frames)
    assert rows[str(a)]["csv"] != rows[str(b)]["csv"]
    # the names do not depend on which other videos are in the batch, or in which order
    assert output_names([a, b], out) == output_names([b, a], out)[::-1] == [output_names([a], out)[0], output_names([b], out)[0]]


def test_changed_inputs_and_old_outputs_are_not_taken_as_complete(tmp_path, same_names, make_clip, landmarker_path, capsys):
    """Bug 1: "complete" means complete for this input: a file replaced at the same path, or an output made before
    inputs were recorded in the sidecar, is analysed again."""
    a, _ = same_names
    video = tmp_path / "videos" / "clip.mp4"
    video.parent.mkdir()
    video.write_bytes(a.read_bytes())
    out = tmp_path / "R"
    out.mkdir()
    # an output written by an older dan-fer: named <stem>.csv, its sidecar without the input's identity
    old = out / "clip.csv"
    analyze_video(video, old, {"landmarker": str(landmarker_path), "threads": 1})
    meta = json.loads(sidecar_path(old).read_text())
    meta.pop("input", None)
    sidecar_path(old).write_text(json.dumps(meta))
    rc, report = _batch([video, "--out-dir", out, "--workers", "1", "--landmarker", landmarker_path], capsys)
    assert rc == 0 and report["analysed"] == 1 and report["skipped_complete"] == 0  # was: skipped as complete
    [name] = output_names([video], out)
    assert is_complete(name, video)
    # the same path now holds another recording (a new session copied over the old one)
    make_clip(video, 200, 17)
    assert not is_complete(name, video)
    rc, report = _batch([video, "--out-dir", out, "--workers", "1", "--landmarker", landmarker_path], capsys)
    assert rc == 0 and report["analysed"] == 1 and report["frames"] == 17
    assert [r["frames"] for r in _summary(out)] == ["17"]


def _session_processes(sid: int) -> set[int]:
    """Live processes of a session (the batch, its workers, multiprocessing's helpers)."""
    found = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        if int(fields[3]) == sid and fields[0] != "Z":  # field 6 of stat: the session id; zombies are already dead
            found.add(int(entry))
    return found


def _survivors(sid: int, timeout: float) -> list[str]:
    """The command lines of the session's processes still alive after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while _session_processes(sid) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = []
    for pid in sorted(_session_processes(sid)):
        try:
            left.append(f"{pid}: " + Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()[:160])
        except OSError:
            pass
    return left


def _wait_for_rows(csv_path: Path, proc: subprocess.Popen, rows: int, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while not (csv_path.is_file() and csv_path.read_bytes().count(b"\n") > rows):
        assert proc.poll() is None, f"the batch ended early ({proc.returncode})"
        assert time.monotonic() < deadline, f"no {rows} rows in {csv_path}"
        time.sleep(0.1)


@pytest.fixture(scope="module")
def long_clips(tmp_path_factory, make_clip) -> list[Path]:
    folder = tmp_path_factory.mktemp("long")
    return [make_clip(folder / f"{i}.mp4", 50 * i, 300) for i in range(3)]


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
def test_kill_9_of_a_batch_takes_its_workers_with_it(tmp_path, long_clips, landmarker_path):
    """Bug 4: SIGKILL to the batch process alone (not its group): no worker survives it, none starts another video."""
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "dan_core", "batch", *map(str, long_clips), "--out-dir", str(out),
                             "--workers", "2", "--no-progress"], env=_env(landmarker_path), cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    csvs = output_names(long_clips, out)
    try:
        for c in csvs[:2]:
            _wait_for_rows(c, proc, 5)
        family = _session_processes(proc.pid) - {proc.pid}
        assert len(family) >= 2  # the two workers (and multiprocessing's helpers)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        survivors = _survivors(proc.pid, 10.0)
        assert not survivors, f"orphaned after kill -9 of the batch: {survivors}"  # was: every worker, ~390 MB each
        assert not csvs[2].exists()  # the third video was never started
    finally:
        for pid in _session_processes(proc.pid):
            os.kill(pid, signal.SIGKILL)
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_stopped_batch_hands_out_no_more_work(tmp_path, long_clips, landmarker_path, sig):
    """SIGTERM (or Ctrl+C) while the first video runs: the batch stops within seconds and never starts the second one."""
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "dan_core", "batch", *map(str, long_clips), "--out-dir", str(out),
                             "--workers", "1", "--no-progress"], env=_env(landmarker_path), cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    csvs = output_names(long_clips, out)
    try:
        _wait_for_rows(csvs[0], proc, 5)
        t0 = time.monotonic()
        if sig == signal.SIGINT:
            os.killpg(proc.pid, sig)  # Ctrl+C reaches the whole foreground group
        else:
            os.kill(proc.pid, sig)
        _, err = proc.communicate(timeout=60)
        took = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
    assert proc.returncode == 128 + sig and "Traceback" not in err, err
    assert err.strip().splitlines() == ["dan-fer batch: interrupted"]
    assert took < 5.0, f"took {took:.1f} s to stop"  # was 7-12 s: the next queued video started first
    assert not csvs[1].exists() and not csvs[2].exists()
    assert not is_complete(csvs[0], long_clips[0])  # stopped part way: the rerun does it again
    assert not _survivors(proc.pid, 5.0)

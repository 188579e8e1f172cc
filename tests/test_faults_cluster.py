"""Fault suite, part 6: dan-fer batch on a Dask cluster of real processes on 127.0.0.1: a worker killed mid-video, a
task run twice, the client killed; every CSV whole and equal, row for row, to a single-machine run."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from dan_core import cli
from dan_core.commands.batch import is_complete, output_names
from dan_core.commands.batch_task import record_files, run_video
from dan_core.pipeline.timeline import sidecar_path

pytestmark = [pytest.mark.faults, pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals, /proc")]

ROOT = Path(__file__).resolve().parent.parent
PART = re.compile(r"\.(\d+)-[0-9a-f]{8}\.part$")  # an attempt's CSV: .<name>.csv.<pid>-<8 hex>.part


def _env(landmarker_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DAN_FER_DEBUG", "QT_QPA_PLATFORM_PLUGIN_PATH")}
    env.update(PYTHONPATH=str(ROOT), DAN_FER_NO_DOWNLOAD="1", DAN_FER_LANDMARKER=str(landmarker_path))
    return env


@pytest.fixture(scope="module")
def long_clips(tmp_path_factory, make_clip) -> Path:
    """Four real clips of 75 frames: long enough to be caught mid-video."""
    folder = tmp_path_factory.mktemp("cluster_videos")
    for i, start in enumerate((0, 110, 220, 330)):
        make_clip(folder / f"v{i}.mp4", start, 75)
    return folder


@pytest.fixture(scope="module")
def reference(long_clips, tmp_path_factory, landmarker_path) -> dict[str, str]:
    """Each clip's CSV from a single-machine run (today's process pool): name -> text."""
    out = tmp_path_factory.mktemp("reference")
    assert cli.main(["batch", str(long_clips), "--out-dir", str(out), "--workers", "2", "--no-progress",
                     "--landmarker", str(landmarker_path)]) == 0
    return {p.name: p.read_text() for p in out.glob("*.csv") if p.name != "summary.csv"}


@pytest.fixture(scope="module")
def by_hand(dask_processes, tmp_path_factory, landmarker_path):
    """``dask scheduler`` and ``dask worker --nworkers 2 --nthreads 1``, each its own process, and a client of them."""
    from distributed import Client

    cluster = dask_processes(tmp_path_factory.mktemp("dask"), _env(landmarker_path))
    cluster.add_workers(2)
    try:
        with Client(cluster.address, timeout="30s") as client:
            cluster.wait_for_workers(client, 2)
            yield cluster, client
    finally:
        cluster.close()  # at the end of this module, not of the session: the rest of the suite runs without it


def _alive(pid: int) -> bool:
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _parts(folder: Path) -> list[Path]:
    return sorted(folder.glob(".*.part*"))


def _assert_equal_to_reference(out: Path, videos: list[Path], reference: dict[str, str]) -> None:
    for video, csv_path in zip(videos, output_names(videos, out)):
        assert is_complete(csv_path, video), csv_path
        assert csv_path.read_text().splitlines() == reference[csv_path.name].splitlines(), f"{csv_path.name} differs"


def test_the_cluster_listens_on_loopback_only(by_hand, socket_addresses):
    """The scheduler's address, every worker's, and every socket of every process of the cluster: 127.0.0.1."""
    cluster, client = by_hand
    assert cluster.address.startswith("tcp://127.0.0.1:")
    assert client.scheduler_info()["address"] == cluster.address
    assert all(a.startswith("tcp://127.0.0.1:") for a in client.scheduler_info(n_workers=-1)["workers"])
    pids = cluster.pids()
    assert len(pids) >= 4  # scheduler, the worker command, its two worker processes
    assert socket_addresses(pids) == {"127.0.0.1"}


@pytest.mark.slow
def test_a_worker_killed_mid_video_is_redone_elsewhere(by_hand, long_clips, reference, tmp_path, landmarker_path):
    """kill -9 of the worker process writing a video: the scheduler runs that video again on a live worker; every CSV is
    whole and equal to the single-machine run's, and no attempt's file is left."""
    cluster, _ = by_hand
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "dan_core", "batch", str(long_clips), "--out-dir", str(out), "--json",
                             "--no-progress", "--scheduler", str(cluster.scheduler_file), "--landmarker", str(landmarker_path)],
                            cwd=ROOT, env=_env(landmarker_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    killed = None
    deadline = time.monotonic() + 240
    while killed is None and proc.poll() is None and time.monotonic() < deadline:
        for part in _parts(out) if out.is_dir() else []:
            m = PART.search(part.name)
            if m and len(part.read_text().splitlines()) > 10:  # the header and 10 rows of a 75-frame video: mid-video
                os.kill(int(m.group(1)), signal.SIGKILL)
                killed = part
                break
        time.sleep(0.05)
    stdout, stderr = proc.communicate(timeout=300)
    assert killed is not None, f"no video was caught mid-way: {stderr}"
    report = json.loads(stdout)
    assert proc.returncode == 0 and report["analysed"] == 4 and report["failed"] == 0, stderr
    videos = sorted(long_clips.glob("*.mp4"))
    _assert_equal_to_reference(out, videos, reference)
    redone = out / killed.name[1:killed.name.index(".csv.") + 4]
    meta = json.loads(sidecar_path(redone).read_text())
    assert meta["attempt"] != killed.name and meta["csv"] == redone.name  # made by another attempt, under its final name
    assert _parts(out) == []
    assert "dask: scheduler tcp://127.0.0.1:" in stderr


@pytest.mark.slow
def test_a_task_run_twice_gives_one_whole_csv(by_hand, long_clips, reference, tmp_path, landmarker_path):
    """The same video run by two workers at once (as Dask may after a lost worker reappears): each attempt writes its own
    file, the final CSV appears whole at once (never half-written, never two attempts interleaved) and no attempt's
    file is left."""
    cluster, client = by_hand
    video = long_clips / "v1.mp4"
    (final,) = output_names([video], tmp_path)
    files = record_files(None, str(landmarker_path))
    options = {"every": 1, "max_faces": 4, "backend": "cpu"}
    workers = sorted(client.scheduler_info(n_workers=-1)["workers"])
    futures = [client.submit(run_video, str(video), str(final), options, files, pure=False, workers=[w], allow_other_workers=False)
               for w in workers[:2]]
    whole = reference[final.name].splitlines()
    seen, stop = [], threading.Event()

    def watch() -> None:  # what a reader of the output folder sees meanwhile
        while not stop.is_set():
            if final.exists():
                seen.append(final.read_text().splitlines())
            time.sleep(0.01)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        results = client.gather(futures, errors="raise")
    finally:
        stop.set()
        watcher.join()
    assert {r["worker"] for r in results} == set(workers[:2]) and all(r["status"] == "ok" for r in results)
    assert seen and all(lines == whole for lines in seen)  # the final name never showed a partial or mixed file
    assert final.read_text().splitlines() == whole and is_complete(final, video)
    meta = json.loads(sidecar_path(final).read_text())
    assert meta["csv"] == final.name and meta["worker"] in workers[:2]
    assert _parts(tmp_path) == [] and sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [final.name, sidecar_path(final).name, ".dan-fer-batch.lock"])


@pytest.mark.slow
def test_the_client_killed_mid_batch_then_a_rerun_resumes(long_clips, reference, tmp_path, landmarker_path):
    """kill -9 of `batch --cluster local:2` mid-batch: its workers go with it (no process left); the same command again
    skips the videos already complete and analyses the others; every CSV equals the single-machine run's."""
    import psutil

    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "dan_core", "batch", str(long_clips), "--out-dir", str(out), "--cluster", "local:2",
           "--no-progress", "--landmarker", str(landmarker_path)]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=_env(landmarker_path), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    videos = sorted(long_clips.glob("*.mp4"))
    csvs = output_names(videos, out)
    deadline = time.monotonic() + 240
    try:
        while proc.poll() is None and time.monotonic() < deadline:
            if any(is_complete(c, v) for c, v in zip(csvs, videos)) and any(len(p.read_text().splitlines()) > 3
                                                                              for p in _parts(out) if PART.search(p.name)):
                break
            time.sleep(0.05)
        tree = [p.pid for p in psutil.Process(proc.pid).children(recursive=True)]
    finally:
        proc.kill()  # the client alone, as the OOM killer or a power cut of its terminal would
        proc.wait(30)
    done = [c for c, v in zip(csvs, videos) if is_complete(c, v)]
    assert 1 <= len(done) < 4 and tree
    deadline = time.monotonic() + 30
    while any(_alive(pid) for pid in tree):
        assert time.monotonic() < deadline, "a worker outlived its client"
        time.sleep(0.2)
    before = {c: c.stat().st_mtime_ns for c in done}
    rerun = subprocess.run([*cmd, "--json"], cwd=ROOT, env=_env(landmarker_path), capture_output=True, text=True, timeout=300)
    report = json.loads(rerun.stdout)
    assert rerun.returncode == 0 and report["skipped_complete"] == len(done) and report["analysed"] == 4 - len(done), rerun.stderr
    assert {c: c.stat().st_mtime_ns for c in done} == before  # complete videos are skipped exactly as today
    _assert_equal_to_reference(out, videos, reference)
    assert _parts(out) == []

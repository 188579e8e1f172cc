"""dan-fer batch on Dask: --cluster local:2, a stale file on a worker, --gpu, retries, the commit of an attempt, the
Slurm recipe's job script. Every scheduler, worker and dashboard listens on 127.0.0.1."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from dan_core import cli
from dan_core.commands.batch import is_complete, output_names
from dan_core.commands.batch_task import FileRecord, StaleFileError, attempt_path, commit, record_files, remove_attempts, run_video
from dan_core.errors import DanFerError
from dan_core.pipeline.timeline import sidecar_path

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def clips(tmp_path_factory, make_clip) -> Path:
    """Two short real clips and a file with a video's name that is no video."""
    folder = tmp_path_factory.mktemp("dask_videos")
    make_clip(folder / "a.mp4", 0, 15)
    make_clip(folder / "b.mp4", 200, 15)
    (folder / "broken.mp4").write_bytes(os.urandom(4096))
    return folder


def _summary(out: Path) -> dict[str, dict]:
    with open(out / "summary.csv", newline="", encoding="utf-8") as f:
        return {Path(r["video"]).name: r for r in csv.DictReader(f)}


def _error_line(capsys) -> str:
    """The one error line on stderr (besides the lines that say where the Dask scheduler is)."""
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith("dask: ")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def _env(landmarker_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DAN_FER_DEBUG", "QT_QPA_PLATFORM_PLUGIN_PATH")}
    env.update(PYTHONPATH=str(ROOT), DAN_FER_NO_DOWNLOAD="1", DAN_FER_LANDMARKER=str(landmarker_path))
    return env


def test_without_cluster_flags_batch_needs_no_dask():
    """The process pool stays the default and imports nothing of Dask."""
    code = ("import sys, argparse; from dan_core.commands import batch; p = argparse.ArgumentParser(); batch.add_arguments(p); "
            "a = p.parse_args(['x', '--out-dir', 'y']); print(a.scheduler, a.cluster, a.retries, a.gpu, "
            "[m for m in sys.modules if m.split('.')[0] in ('dask', 'distributed')])")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert out.split() == ["None", "None", "None", "False", "[]"]


@pytest.mark.parametrize("flags, message", [
    (["--retries", "2"], "--retries and --gpu need --scheduler ADDRESS or --cluster local:N"),
    (["--gpu"], "--retries and --gpu need --scheduler ADDRESS or --cluster local:N"),
    (["--cluster", "local:2", "--workers", "2"], "--workers sizes the process pool"),
    (["--cluster", "local:0"], "argument --cluster: expected local:N"),
    (["--cluster", "slurm:4"], "argument --cluster: expected local:N"),
    (["--cluster", "local:2", "--scheduler", "tcp://127.0.0.1:8786"], "not allowed with argument"),
    (["--cluster", "local:2", "--retries", "-1"], "argument --retries"),
])
def test_cluster_flags_are_checked_in_one_line(tmp_path, clips, flags, message, capsys):
    try:
        rc = cli.main(["batch", str(clips / "a.mp4"), "--out-dir", str(tmp_path / "out"), *flags])
    except SystemExit as exc:  # argparse's own errors
        rc = exc.code
    assert rc == 2 and message in _error_line(capsys)
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_an_unreachable_scheduler_is_one_line(tmp_path, clips, landmarker_path, capsys):
    rc = cli.main(["batch", str(clips / "a.mp4"), "--out-dir", str(tmp_path), "--scheduler", "tcp://127.0.0.1:9",
                   "--landmarker", str(landmarker_path), "--no-progress"])
    assert rc == 2
    assert "cannot reach the Dask scheduler tcp://127.0.0.1:9" in _error_line(capsys)


@pytest.mark.slow
def test_local_cluster_batch_with_retries_then_resume(tmp_path, clips, landmarker_path, capsys):
    """--cluster local:2: the good videos are analysed, the broken one is one error row after 1 + 2 tries, the others go
    on; the scheduler and dashboard listen on 127.0.0.1; the rerun skips the complete videos."""
    out = tmp_path / "out"
    args = ["batch", str(clips), "--out-dir", str(out), "--cluster", "local:2", "--retries", "2", "--json", "--no-progress",
            "--landmarker", str(landmarker_path)]
    rc = cli.main(args)
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    assert rc == 1 and report["videos"] == 3 and report["analysed"] == 2 and report["failed"] == 1 and report["workers"] == 2
    assert report["frames"] == 30 and report["threads_per_worker"] == max(1, len(os.sched_getaffinity(0)) // 2)
    error = report["errors"][str(clips / "broken.mp4")]
    assert error.endswith("(3 attempts)") and "worker tcp://127.0.0.1:" in error
    assert "dask: scheduler tcp://127.0.0.1:" in captured.err and "dashboard http://127.0.0.1:" in captured.err
    rows = _summary(out)
    assert rows["broken.mp4"]["status"] == "error" and rows["broken.mp4"]["error"] == error
    files = record_files(None, str(landmarker_path))
    for name in ("a.mp4", "b.mp4"):
        assert rows[name]["status"] == "ok" and rows[name]["frames"] == "15"
        meta = json.loads(sidecar_path(out / rows[name]["csv"]).read_text())
        assert meta["worker"].startswith("tcp://127.0.0.1:") and meta["model_sha256"] == files[0].sha256
        assert meta["landmarker_sha256"] == files[1].sha256 and is_complete(out / rows[name]["csv"], clips / name)
    assert not list(out.glob(".*.part*"))
    mtimes = {p: p.stat().st_mtime_ns for p in out.glob("*.csv")}
    rc = cli.main([*args[:7], "0", *args[8:]])  # --retries 0 this time
    report = json.loads(capsys.readouterr().out)
    assert rc == 1 and report["skipped_complete"] == 2 and report["analysed"] == 0 and report["failed"] == 1
    assert "attempts" not in report["errors"][str(clips / "broken.mp4")]
    assert all(p.stat().st_mtime_ns == t for p, t in mtimes.items() if p.name != "summary.csv")


def test_a_worker_process_keeps_its_pipeline(clips, tmp_path, landmarker_path):
    """One landmarker and one ONNX Runtime session per worker process, for all its videos."""
    from distributed import Client, LocalCluster

    files = record_files(None, str(landmarker_path))
    ids = lambda: [id(p) for p in __import__("dan_core.commands.batch", fromlist=["_PIPELINES"])._PIPELINES.values()]  # noqa: E731
    with LocalCluster(n_workers=1, threads_per_worker=1, host="127.0.0.1", dashboard_address="127.0.0.1:0") as cluster, \
            Client(cluster) as client:
        assert cluster.scheduler_address.startswith("tcp://127.0.0.1:")
        seen = []
        for name in ("a.mp4", "b.mp4"):
            (final,) = output_names([clips / name], tmp_path)
            client.submit(run_video, str(clips / name), str(final), {"every": 1}, files, pure=False).result()
            seen.append(list(client.run(ids).values()))
    assert len(seen[0]) == 1 and len(seen[0][0]) == 1 and seen[1] == seen[0]


def test_a_stale_model_is_named_with_both_hashes(tmp_path, clips, landmarker_path):
    """The task compares the files this process reads with the client's record before anything is written."""
    files = record_files(None, str(landmarker_path))
    wrong = FileRecord("model", files[0].given, "/client/models/dan.onnx", "0" * 64)
    (final,) = output_names([clips / "a.mp4"], tmp_path)
    with pytest.raises(StaleFileError) as err:
        run_video(str(clips / "a.mp4"), str(final), {}, (wrong, files[1]))
    msg = str(err.value)
    assert msg.startswith(f"model {files[0].path} on this process has sha256 {files[0].sha256}, but the client's ")
    assert "/client/models/dan.onnx has " + "0" * 64 in msg
    assert list(tmp_path.iterdir()) == []


def test_commit_is_one_step_and_leftovers_are_cleared(tmp_path):
    """A finished attempt replaces the pair as a whole; an attempt cleared meanwhile commits nothing; leftovers go."""
    final = tmp_path / "v-12345678.csv"

    def attempt(text: str) -> Path:
        part = attempt_path(final)
        part.write_text(text)
        sidecar_path(part).write_text(json.dumps({"csv": part.name, "finished": "now"}))
        return part

    first, second = attempt("first\n"), attempt("second\n")
    assert first != second and first.name.startswith(".v-12345678.csv.") and first.name.endswith(".part")
    commit(first, final, worker="w1")
    commit(second, final, worker="w2")
    assert final.read_text() == "second\n" and json.loads(sidecar_path(final).read_text()) == {"csv": final.name, "finished": "now",
                                                                                               "worker": "w2"}
    third = attempt("third\n")
    third.unlink()  # a newer batch cleared it while it was being finished
    with pytest.raises(DanFerError, match="was removed before"):
        commit(third, final)
    assert final.read_text() == "second\n" and sidecar_path(final).is_file()
    attempt("killed\n")
    assert remove_attempts([final]) == 3  # the killed attempt's CSV, the cleared one's sidecar and the killed one's
    assert sorted(p.name for p in tmp_path.iterdir()) == [".dan-fer-batch.lock", final.name, sidecar_path(final).name]


@pytest.mark.slow
def test_a_stale_file_on_a_worker_stops_the_batch_and_gpu_videos_run_on_gpu_workers(dask_processes, tmp_path, clips,
                                                                                      landmarker_path, monkeypatch, capsys):
    """A scheduler and two workers started by hand: one with --resources GPU=1, one whose model differs by one byte.
    Without --gpu the batch stops before any video, in one line naming the stale file, its worker and both hashes. With
    --gpu only the GPU worker is asked and only it runs the videos, with the CUDA backend (absent here: error rows
    naming that worker)."""
    from distributed import Client

    from dan_core.paths import default_model_path
    from dan_core.pipeline.landmarks import sha256_of

    model = default_model_path().resolve()  # the shipped model: what the client and the GPU worker use
    stale = tmp_path / "stale" / model.name  # an older copy on one worker ($DAN_FER_MODEL: its own default)
    stale.parent.mkdir()
    data = bytearray(model.read_bytes())
    data[-1] ^= 1
    stale.write_bytes(bytes(data))
    (tmp_path / "dask").mkdir()
    cluster = dask_processes(tmp_path / "dask", _env(landmarker_path))
    try:
        cluster.add_workers(1, name="gpu", resources="GPU=1")
        cluster.add_workers(1, name="stale", env={**_env(landmarker_path), "DAN_FER_MODEL": str(stale)})
        with Client(cluster.address, timeout="30s") as client:
            cluster.wait_for_workers(client, 2)
            info = client.scheduler_info(n_workers=-1)["workers"]
        (gpu_worker,) = [a for a, w in info.items() if w["resources"].get("GPU")]
        (stale_worker,) = [a for a in info if a != gpu_worker]
        monkeypatch.delenv("DAN_FER_MODEL", raising=False)  # no --model: each side uses its own default
        out = tmp_path / "out"
        args = ["batch", str(clips / "a.mp4"), str(clips / "b.mp4"), "--out-dir", str(out), "--scheduler", cluster.address,
                "--no-progress", "--landmarker", str(landmarker_path)]
        assert cli.main(args) == 2
        assert _error_line(capsys) == (
            f"dan-fer batch: error: model {stale} on worker {stale_worker} has sha256 {sha256_of(stale)}, but the client's "
            f"{model} has {sha256_of(model)}: every worker must read the same file (replace the worker's copy, or pass "
            "--model PATH on a file system all of them share)")
        assert not list(out.glob("*.csv*")) and not list(out.glob(".*.part*"))
        rc = cli.main([*args, "--gpu", "--retries", "0", "--json"])
        report = json.loads(capsys.readouterr().out)
        assert report["analysed"] + report["failed"] == 2
        for name in ("a.mp4", "b.mp4"):
            row = _summary(out)[name]
            if row["status"] == "error":  # no CUDA on this machine: the GPU worker says so
                assert "--backend cuda" in row["error"] and row["error"].endswith(f"(worker {gpu_worker})")
            else:
                meta = json.loads(sidecar_path(out / row["csv"]).read_text())
                assert meta["worker"] == gpu_worker and meta["backend"] == "onnxruntime CUDA"
        assert rc == (1 if report["failed"] else 0)
    finally:
        cluster.close()


@pytest.mark.slow
def test_a_file_replaced_mid_batch_stops_it(tmp_path, clips, landmarker_path, make_clip, capsys):
    """The landmarker is changed on disk while the first video runs: the next task finds another sha256 than the client
    recorded, and the batch stops in one line instead of analysing the rest with another file."""
    import threading
    import time

    from dan_core.pipeline.landmarks import sha256_of

    videos = tmp_path / "videos"
    videos.mkdir()
    for i in range(3):
        make_clip(videos / f"{i}.mp4", 100 * i, 25)
    copy = tmp_path / "landmarker.task"
    copy.write_bytes(landmarker_path.read_bytes())
    before = sha256_of(copy)
    out = tmp_path / "out"
    stop = threading.Event()

    def replace_when_the_first_video_runs() -> None:
        while not stop.is_set():
            if list(out.glob(".*.part")):
                data = bytearray(copy.read_bytes())
                data[-1] ^= 1
                copy.write_bytes(bytes(data))
                return
            time.sleep(0.01)

    watcher = threading.Thread(target=replace_when_the_first_video_runs)
    watcher.start()
    try:
        rc = cli.main(["batch", str(videos), "--out-dir", str(out), "--cluster", "local:1", "--no-progress", "--landmarker", str(copy)])
    finally:
        stop.set()
        watcher.join()
    line = _error_line(capsys)
    assert rc == 2 and line.startswith(f"dan-fer batch: error: landmarker {copy} on worker tcp://127.0.0.1:")
    assert f"has sha256 {sha256_of(copy)}, but the client's {copy} has {before}" in line
    done = [v for v, c in zip(sorted(videos.iterdir()), output_names(sorted(videos.iterdir()), out)) if is_complete(c, v)]
    assert len(done) == 1 and not (out / "summary.csv").exists() and not list(out.glob(".*.part*"))


def test_the_slurm_recipe_writes_the_job_script_it_promises():
    """The README's SLURMCluster parameters (its scheduler on 127.0.0.1 here): the job script each Slurm job would run.
    Submitting it needs Slurm, which this machine lacks: that part is not tested."""
    from dask_jobqueue import SLURMCluster

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    cpu = {"cores": 4, "processes": 4, "job_cpu": 8, "memory": "8GB", "walltime": "04:00:00"}
    gpu = {"cores": 1, "processes": 1, "job_cpu": 4, "memory": "16GB", "walltime": "04:00:00", "job_extra_directives": ["--gres=gpu:1"],
           "worker_extra_args": ["--resources", "GPU=1"]}
    assert 'cores=4, processes=4, job_cpu=8, memory="8GB", walltime="04:00:00"' in readme
    assert 'cores=1, processes=1, job_cpu=4, memory="16GB", job_extra_directives=["--gres=gpu:1"]' in readme
    assert 'worker_extra_args=["--resources", "GPU=1"]' in readme
    here = {"host": "127.0.0.1", "dashboard_address": "127.0.0.1:0"}
    with SLURMCluster(**cpu, scheduler_options=here) as cluster:
        assert cluster.scheduler_address.startswith("tcp://127.0.0.1:")
        script = cluster.job_script()
        assert f"-m distributed.cli.dask_worker {cluster.scheduler_address} " in script
    assert "#SBATCH --cpus-per-task=8" in script and "--nworkers 4" in script and "--nthreads 1 " in script
    with SLURMCluster(**gpu, scheduler_options=here) as cluster:
        script = cluster.job_script()
    assert "#SBATCH --gres=gpu:1" in script and "--resources GPU=1" in script and "--nthreads 1 " in script


def test_the_throughput_model_counts_rounds_of_whole_videos():
    """A video is one task: 20 videos keep 20 of 64 workers busy, and 200 take ceil(200 / 64) = 4 rounds."""
    from dan_core.commands.bench_batch import throughput_model

    m = {"one_worker": {"fps": 60.0}, "dask": {"round_trip_ms": 0.0, "cluster_start_s": 0.0}, "pipeline_start_s": 0.0,
         "summary": {"rows_per_s": 1e12}, "video_bytes_per_frame": 1000}
    rows = {(r["video_hours"], r["workers"]): r for r in throughput_model(m, video_minutes=30, video_fps=30, cores_per_worker=2)}
    one_video_h = 30 * 60 * 30 / 60.0 / 3600  # 0.25 h
    assert rows[10, 1]["hours"] == pytest.approx(20 * one_video_h, abs=0.01)
    assert rows[10, 64]["busy_workers"] == 20 and rows[10, 64]["hours"] == pytest.approx(one_video_h, abs=0.01)
    assert rows[100, 64]["hours"] == pytest.approx(4 * one_video_h, abs=0.01) and rows[1000, 8]["videos"] == 2000
    assert rows[100, 64]["read_mb_s"] == pytest.approx(64 * 60 * 1000 / 1e6, abs=0.1)

"""dan-fer bench-batch: the batch on Dask against the process pool, what Dask costs, and the throughput model.

    dan-fer bench-batch VIDEO [--clips 4] [--frames 193] [--workers 2] [--json]

Cuts ``--clips`` clips of ``--frames`` frames from VIDEO (native size), then, in one run, times
``dan-fer batch --workers W`` and ``dan-fer batch --cluster local:W`` on them in both orders (pool, Dask, Dask,
pool), each a fresh process into a fresh folder, wall time from outside (start-up included) and CPU time of the
whole process tree. It also times one worker alone (``--workers 1``: frames/s of one analysis on this machine),
Dask's cost per task (empty tasks on a LocalCluster of W workers: throughput and round trip), the start of that
cluster, a worker's memory after a video, and how fast the client reads timelines back for ``summary.csv``.

From those measurements it prints the throughput model: the expected hours for 10, 100 and 1,000 hours of video
(``--video-minutes`` per file, ``--video-fps``) on 1, 8 and 64 workers of ``--cores-per-worker`` cores each. Every
process listens on 127.0.0.1 only. Take the numbers on a quiet machine: anything else running changes them.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from dan_core.cli_fields import ranged
from dan_core.errors import DanFerError

HOURS = (10, 100, 1000)
WORKERS = (1, 8, 64)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("video", help="a video with a face (e.g. ../shared/media/pexels_WolfgangLanger_emotions.mp4)")
    parser.add_argument("--clips", type=ranged(int, 1), default=4, help="clips to cut from it (default: 4)")
    parser.add_argument("--frames", type=ranged(int, 1), default=193, help="frames per clip (default: 193; the video is "
                        "read round again when it is shorter)")
    parser.add_argument("--workers", type=ranged(int, 1), default=2, help="workers of the pool and of the local cluster (default: 2)")
    parser.add_argument("--landmarker", default=None, help="MediaPipe face_landmarker.task")
    parser.add_argument("--video-minutes", type=ranged(float, 0.1), default=30.0, help="length of one video in the model (default: 30)")
    parser.add_argument("--video-fps", type=ranged(float, 1.0), default=30.0, help="frame rate of the videos in the model (default: 30)")
    parser.add_argument("--cores-per-worker", type=ranged(int, 1), default=2, help="cores of one worker in the model (default: 2; "
                        "one analysis keeps about 1.7 busy)")
    parser.add_argument("--json", action="store_true", help="print the numbers as one JSON object")


# ------------------------------------------------------------------------------------ measurements


def cut_clips(video: Path, folder: Path, clips: int, frames: int) -> list[Path]:
    """``clips`` clips of ``frames`` frames each from evenly spaced starts in ``video`` (mp4v, native size)."""
    import cv2

    cap = cv2.VideoCapture(str(video))
    total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
    if total <= 0:
        raise DanFerError(f"cannot read frames from {video}")
    out = []
    for i in range(clips):
        cap.set(cv2.CAP_PROP_POS_FRAMES, (i * total) // clips)
        writer = None
        for _ in range(frames):
            ok, img = cap.read()
            if not ok:  # the end: go round again
                cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
                ok, img = cap.read()
            if writer is None:
                writer = cv2.VideoWriter(str(folder / f"clip{i}.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), fps, (img.shape[1], img.shape[0]))
            writer.write(img)
        writer.release()
        out.append(folder / f"clip{i}.mp4")
    cap.release()
    return out


def time_batch(clips: Path, out: Path, flags: list[str], landmarker: str | None) -> dict:
    """One ``dan-fer batch`` process: wall time from outside, CPU time of its process tree, its report."""
    cmd = [sys.executable, "-m", "dan_core", "batch", str(clips), "--out-dir", str(out), "--json", "--no-progress", *flags]
    cmd += ["--landmarker", landmarker] if landmarker else []
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise DanFerError(f"{' '.join(cmd[3:])} failed: {done.stderr.strip().splitlines()[-1:] or done.returncode}")
    report = json.loads(done.stdout)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"flags": " ".join(flags), "wall_s": round(wall, 2), "frames": report["frames"], "fps": round(report["frames"] / wall, 1),
            "batch_s": report["seconds"], "cpu_s": round(cpu, 2), "cpu_s_per_frame": round(cpu / report["frames"], 4)}


def _empty() -> None:
    return None


def _rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 1e6


def dask_costs(workers: int, clip: Path, landmarker: str | None, tasks: int = 1000) -> dict:
    """Dask's own cost on a LocalCluster of ``workers`` (127.0.0.1): start, empty tasks, a worker's memory after a video."""
    from distributed import Client, LocalCluster, wait

    from dan_core.commands.batch_task import record_files, run_video

    t0 = time.perf_counter()
    with LocalCluster(n_workers=workers, threads_per_worker=1, host="127.0.0.1", dashboard_address="127.0.0.1:0") as cluster, \
            Client(cluster) as client:
        client.wait_for_workers(workers)
        start = time.perf_counter() - t0
        client.submit(_empty, pure=False).result()  # warm
        t1 = time.perf_counter()
        wait([client.submit(_empty, pure=False) for _ in range(tasks)])
        per_task = (time.perf_counter() - t1) / tasks * workers  # worker time each task costs
        trips = []
        for _ in range(30):
            t2 = time.perf_counter()
            client.submit(_empty, pure=False).result()
            trips.append(time.perf_counter() - t2)
        with tempfile.TemporaryDirectory() as tmp:
            client.submit(run_video, str(clip), str(Path(tmp) / "x.csv"), {}, record_files(None, landmarker), pure=False).result()
        rss = max(client.run(_rss_mb).values())
    return {"cluster_start_s": round(start, 2), "task_ms": round(per_task * 1000, 2),
            "round_trip_ms": round(statistics.median(trips) * 1000, 2), "worker_rss_mb": round(rss)}


def summary_read_rate(csvs: list[Path]) -> dict:
    """How fast the client reads timelines back (summary.csv reads every CSV once): rows/s and bytes per row."""
    from dan_core.pipeline.timeline import load_timeline

    t0 = time.perf_counter()
    rows = sum(load_timeline(p).rows for p in csvs)
    wall = time.perf_counter() - t0
    size = sum(p.stat().st_size for p in csvs)
    return {"rows_per_s": round(rows / wall), "bytes_per_row": round(size / max(rows, 1), 1)}


# ------------------------------------------------------------------------------------------- model


def throughput_model(m: dict, *, video_minutes: float, video_fps: float, cores_per_worker: int) -> list[dict]:
    """Expected hours for each amount of video on each number of workers, from the measurements ``m``.

    One worker analyses fps_1 frames/s (measured with 2 cores; more cores than an analysis keeps busy do not help it);
    a video is one task, so a batch takes ceil(videos / workers) rounds of one video each, plus the cluster's start,
    one pipeline per worker, Dask's cost per task, and the client reading every CSV back for summary.csv.
    """
    fps_1 = m["one_worker"]["fps"] * min(1.0, cores_per_worker / 2)
    video_s = video_minutes * 60 * video_fps / fps_1 + m["dask"]["round_trip_ms"] / 1000
    table = []
    for hours in HOURS:
        videos = math.ceil(hours * 60 / video_minutes)
        frames = hours * 3600 * video_fps
        tail = frames / m["summary"]["rows_per_s"]  # one face a frame: one row
        for workers in WORKERS:
            busy = min(workers, videos)
            total = m["dask"]["cluster_start_s"] + m["pipeline_start_s"] + math.ceil(videos / workers) * video_s + tail
            table.append({"video_hours": hours, "workers": workers, "videos": videos, "busy_workers": busy,
                          "hours": round(total / 3600, 2), "summary_minutes": round(tail / 60, 1),
                          "read_mb_s": round(busy * fps_1 * m["video_bytes_per_frame"] / 1e6, 1)})
    return table


def run(args: argparse.Namespace) -> int:
    video = Path(args.video)
    if not video.is_file():
        raise DanFerError(f"no such video: {video}")
    with tempfile.TemporaryDirectory(prefix="dan-fer-bench-batch-") as tmp:
        clips_dir = Path(tmp) / "clips"
        clips_dir.mkdir()
        clips = cut_clips(video, clips_dir, args.clips, args.frames)
        w = str(args.workers)
        runs = [time_batch(clips_dir, Path(tmp) / f"run{i}", flags, args.landmarker)
                for i, flags in enumerate((["--workers", w], ["--cluster", f"local:{w}"], ["--cluster", f"local:{w}"], ["--workers", w]))]
        one = time_batch(clips_dir, Path(tmp) / "one", ["--workers", "1"], args.landmarker)
        m = {"clips": args.clips, "frames_per_clip": args.frames, "runs": runs, "one_worker": one,
             "dask": dask_costs(args.workers, clips[0], args.landmarker), "pipeline_start_s": _pipeline_start(args.landmarker),
             "summary": summary_read_rate(sorted(p for p in (Path(tmp) / "run0").glob("*.csv") if p.name != "summary.csv")),
             "video_bytes_per_frame": round(video.stat().st_size / _frame_count(video))}
    pool = [r["wall_s"] for r in runs if r["flags"].startswith("--workers")]
    dask = [r["wall_s"] for r in runs if r["flags"].startswith("--cluster")]
    m["dask_extra_ms_per_video"] = round((statistics.mean(dask) - statistics.mean(pool)) / args.clips * 1000)
    m["dask_extra_ms_per_video_after_start"] = round(m["dask_extra_ms_per_video"] - m["dask"]["cluster_start_s"] * 1000 / args.clips)
    m["core_s_per_frame"] = round(statistics.mean(r["cpu_s_per_frame"] for r in runs if r["flags"].startswith("--workers")), 4)
    m["model"] = throughput_model(m, video_minutes=args.video_minutes, video_fps=args.video_fps, cores_per_worker=args.cores_per_worker)
    print(json.dumps(m) if args.json else _text(m, args))
    return 0


def _frame_count(video: Path) -> int:
    import cv2

    cap = cv2.VideoCapture(str(video))
    n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    cap.release()
    return max(n, 1)


def _pipeline_start(landmarker: str | None) -> float:
    """Seconds to build one pipeline (landmarker + ONNX Runtime session + warm-up): once per worker process."""
    from dan_core.pipeline import Pipeline, PipelineConfig

    t0 = time.perf_counter()
    Pipeline(PipelineConfig(landmarker=landmarker, backend="cpu")).close()
    return round(time.perf_counter() - t0, 2)


def _text(m: dict, args: argparse.Namespace) -> str:
    lines = [f"{m['clips']} clips x {m['frames_per_clip']} frames, {os.cpu_count()} cores; wall time includes each process' start"]
    for r in m["runs"]:
        lines.append(f"  batch {r['flags']:<18} {r['wall_s']:7.2f} s  {r['fps']:6.1f} fps  CPU {r['cpu_s_per_frame'] * 1000:.1f} ms/frame")
    one = m["one_worker"]
    busy = one["cpu_s"] / one["wall_s"]
    lines.append(f"  batch --workers 1        {one['wall_s']:7.2f} s  {one['fps']:6.1f} fps (one worker: {busy:.2f} cores busy)")
    d = m["dask"]
    lines.append(f"Dask: extra {m['dask_extra_ms_per_video']} ms per video over the pool ({m['dask_extra_ms_per_video_after_start']} ms "
                 f"without the cluster's start); cluster start {d['cluster_start_s']} s; {d['task_ms']} ms of worker time per task, "
                 f"{d['round_trip_ms']} ms round trip; a worker after a video: {d['worker_rss_mb']} MB")
    lines.append(f"per frame: {m['core_s_per_frame']} core-seconds; pipeline start {m['pipeline_start_s']} s per worker; "
                 f"summary reads {m['summary']['rows_per_s']:,} rows/s ({m['summary']['bytes_per_row']} bytes a row)")
    lines.append(f"model: {args.video_minutes:g}-minute videos at {args.video_fps:g} fps, one face, {args.cores_per_worker} cores a worker")
    lines.append("  video hours | workers | videos | expected hours | of which summary | video read at")
    for row in m["model"]:
        lines.append(f"  {row['video_hours']:>11} | {row['workers']:>7} | {row['videos']:>6} | {row['hours']:>14} | "
                     f"{row['summary_minutes']:>12} min | {row['read_mb_s']} MB/s")
    return "\n".join(lines)


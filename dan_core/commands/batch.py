"""dan-fer batch: many videos -> one timeline CSV (+ sidecar) each in --out-dir, and DIR/summary.csv.

    dan-fer batch VIDEOS_OR_FOLDERS_OR_LIST.txt ... --out-dir DIR [--workers N]

The per-video step is the plain function ``analyze_video(video, csv_path, options) -> dict``: a
path in, a finished CSV out (its sidecar holds the totals, ``finished`` and the input it was made
from). Workers are processes (``batch_pool``), each with its own landmarker and ONNX Runtime
session; the cores are split between them (``threads = cores // workers``). A bad file is one
``error`` row in the summary and the others go on. Each video has its own output name,
``<stem>-<8 hex digits of its absolute path>.csv``, so videos with the same file name in different
folders never share one. A rerun skips videos whose CSV is complete for that very file (sidecar with
``finished``, not interrupted, made from the same path, size and modification time), so an
interrupted batch resumes where it stopped. ``summary.csv`` is rebuilt from all the CSVs at the end:
one row per video and face (duration, frames with a face, dominant-class shares, mean probabilities).
"""

from __future__ import annotations

import argparse
import atexit
import csv
import functools
import hashlib
import io
import json
import os
import sys
import time
from pathlib import Path

from dan_core.cli_fields import ranged
from dan_core.errors import DanFerError
from dan_core.paths import refuse_overwriting_inputs

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv")
LIST_SUFFIXES = (".txt", ".lst", ".list")
FIELDS = ("every", "model", "landmarker", "backend", "precision", "max_faces", "min_face_confidence",
          "blendshapes")  # the options (pipeline.options) a batch offers
DEFAULTS = {"backend": "cpu"}  # where a batch's defaults differ from one analysis'


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from dan_core.pipeline.options import add_options

    parser.add_argument("inputs", nargs="+", help="video files, folders of videos, or text files listing one path a line")
    parser.add_argument("--out-dir", required=True, help="folder for the CSVs (+ sidecars) and summary.csv")
    parser.add_argument("--workers", type=ranged(int, 0), default=0, help="processes (default: one per 2 cores, at least 1)")
    parser.add_argument("--force", action="store_true", help="analyse again videos whose CSV is already complete")
    parser.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    add_options(parser, FIELDS, defaults=DEFAULTS)
    from dan_core.commands import batch_segments
    from dan_core.commands.batch_dask import add_cluster_arguments

    batch_segments.add_arguments(parser)  # --events-dir, --baseline: DIR/segments.csv (batch_segments.py)
    add_cluster_arguments(parser)  # --scheduler, --cluster, --retries, --gpu: the batch on Dask (batch_dask.py)


# ------------------------------------------------------------------------------------------ inputs


def collect_inputs(inputs: list[str]) -> list[Path]:
    """Videos named by files, folders (their videos, sorted) and list files (one path a line, # comments), without repeats."""
    found: list[Path] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            found += sorted(q for q in p.iterdir() if q.is_file() and q.suffix.lower() in VIDEO_SUFFIXES)
        elif p.suffix.lower() in LIST_SUFFIXES and p.is_file():
            for line in p.read_text(encoding="utf-8").splitlines():
                line = line.strip()
                if line and not line.startswith("#"):
                    q = Path(line)
                    found.append(q if q.is_absolute() else p.parent / q)
        else:
            found.append(p)  # a missing or unreadable file is reported in the summary, with the others done
    seen, out = set(), []
    for p in found:
        key = str(p.resolve())
        if key not in seen:
            seen.add(key)
            out.append(p)
    return out


def output_names(videos: list[Path], out_dir: Path) -> list[Path]:
    """DIR/<stem>-<key>.csv: the key is 8 hex digits of the video's absolute path, so the name of a video's
    output depends on that video alone (not on the other inputs or their order)."""
    return [out_dir / f"{v.stem}-{hashlib.sha256(str(v.resolve()).encode('utf-8')).hexdigest()[:8]}.csv" for v in videos]


def input_identity(video: str | os.PathLike) -> dict | None:
    """What the sidecar records of the input: absolute path, size, modification time (None when it cannot be read)."""
    try:
        st = os.stat(video)
    except OSError:
        return None
    return {"path": str(Path(video).resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def is_complete(csv_path: str | os.PathLike, video: str | os.PathLike | None = None) -> bool:
    """A finished CSV: its sidecar says ``finished``, the run was not interrupted, and (given ``video``) it was made
    from that very file as it is now: same path, size and modification time."""
    csv_path = Path(csv_path)
    side = csv_path.with_name(csv_path.name + ".json")
    if not csv_path.is_file() or not side.is_file():
        return False
    try:
        meta = json.loads(side.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if not isinstance(meta, dict) or not isinstance(meta.get("summary", {}), dict):
        return False
    if video is not None and (meta.get("input") is None or meta.get("input") != input_identity(video)):
        return False  # another file, a changed one, or an output from before inputs were recorded
    return bool(meta.get("finished")) and not meta.get("summary", {}).get("interrupted") and "error" not in meta


# --------------------------------------------------------------------------------- one video


_PIPELINES: dict = {}  # per worker process: one landmarker and ONNX session for all its videos


def close_pipelines() -> None:
    """Close this process' cached pipelines (at exit, before the interpreter tears MediaPipe down)."""
    for pipeline in _PIPELINES.values():
        pipeline.close()
    _PIPELINES.clear()


atexit.register(close_pipelines)


def _pipeline_for(config):
    """This process' pipeline for ``config`` (built once), with fresh tracks so face IDs start at 1 for each video."""
    from dan_core.pipeline import Pipeline
    from dan_core.pipeline.tracking import Tracker

    key = repr(config)
    if key not in _PIPELINES:
        close_pipelines()
        _PIPELINES[key] = Pipeline(config)
    pipeline = _PIPELINES[key]
    pipeline.tracker = Tracker(max_missed=config.max_missed)
    return pipeline


def analyze_video(video: str | os.PathLike, csv_path: str | os.PathLike, options: dict | None = None, progress=None) -> dict:
    """Analyse one video into a finished timeline CSV (+ sidecar): the per-video step of a batch.

    ``options``: fields of ``pipeline.options.AnalysisOptions`` by name (model, landmarker, backend,
    max_faces, threads, every, overlap: landmarks of the next frame beside DAN on this one, on for
    one worker, off when workers share the cores); what is missing keeps its default (``DEFAULTS``).
    ``progress(n)`` is called with frames done. Returns {"video", "csv", "status": "ok", "frames",
    ...}; raises DanFerError. The landmarker and ONNX session are kept for the process' next video.
    """
    from dan_core.pipeline.options import EveryNth, options_from
    from dan_core.pipeline.outputs import FrameAccount, Progress, RunTotals, TimelineRows
    from dan_core.pipeline.provenance import run_record
    from dan_core.pipeline.recorder import Recorder
    from dan_core.pipeline.sources import open_source
    from dan_core.pipeline.step import FrameStep, run_stream

    opts = options_from({**DEFAULTS, **(options or {})})
    every = opts.every
    source = open_source(str(video))
    recorder = None
    try:
        t0 = time.perf_counter()
        pipeline = _pipeline_for(opts.config_for(source))
        out_fps = source.fps / every
        meta = {**run_record(pipeline, source=str(video), source_fps=source.fps, source_frames=source.frame_count, live=False,
                             every=every, made_by="dan-fer batch"), "input": input_identity(video), "batch": True}
        recorder = Recorder(csv_path, pipeline.class_names, meta=meta, force=True, blendshapes=pipeline.config.blendshapes)
        totals, account, frames_in = RunTotals(), FrameAccount(every=every, fps=source.fps), EveryNth(source, every)
        with FrameStep([TimelineRows(recorder), account, totals,
                        Progress(progress, every=10) if progress is not None else None]) as step:
            run_stream(pipeline, frames_in, step, overlap=opts.overlap)
        if totals.frames == 0:
            raise DanFerError(f"{video}: no frame could be read" + (f" ({source.error})" if source.error else ""))
        wall, frames = time.perf_counter() - t0, totals.frames
        summary = {"frames": frames, "frames_with_faces": totals.with_faces,
                   "duration_s": round(totals.last_time_s + 1.0 / max(out_fps, 1e-6), 3),
                   "seconds": round(wall, 2), "fps": round(frames / wall, 2) if wall > 0 else 0.0,
                   "stopped_early": source.error, "interrupted": False}
        recorder.close(summary=summary, frames=account.totals(read=frames_in.read, rows=recorder.rows),
                       source_size=list(account.frame_size) if account.frame_size else None)
        recorder = None
        return {"video": str(video), "csv": str(csv_path), "status": "ok", **summary}
    finally:
        if recorder is not None:
            recorder.close(error="stopped before the end")  # what was written stays; the rerun does it again
        source.close()


def _worker_init(threads: int) -> None:
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    try:
        import cv2

        cv2.setNumThreads(1)
    except ImportError:
        pass


def _run_one(video: str, csv_path: str, options: dict, progress) -> dict:
    """In a worker process: analyse one video; any failure is a result, never an exception."""
    try:
        return analyze_video(video, csv_path, options, progress)
    except DanFerError as exc:
        return {"video": video, "csv": csv_path, "status": "error", "error": str(exc)}
    except Exception as exc:  # a file that breaks a decoder or the landmarker: reported, the batch goes on
        return {"video": video, "csv": csv_path, "status": "error", "error": f"{type(exc).__name__}: {exc}"}


# ------------------------------------------------------------------------------------- summary

def summary_rows(videos: list[Path], csvs: list[Path], results: dict[str, dict]) -> tuple[list[str], list[dict]]:
    """summary.csv's columns and rows: one per video and face; a failed video is one error row."""
    from dan_core.pipeline.timeline import read_timeline

    classes: list[str] = []
    rows: list[dict] = []
    for video, csv_path in zip(videos, csvs):
        res = results.get(str(video), {})
        base = {"video": str(video), "csv": csv_path.name}
        if res.get("status") == "error" or not is_complete(csv_path, video):
            rows.append({**base, "status": "error", "error": res.get("error", "not analysed")})
            continue
        try:
            names, cols, meta = read_timeline(csv_path)
        except DanFerError as exc:
            rows.append({**base, "status": "error", "error": str(exc)})
            continue
        classes = classes or names
        s = meta.get("summary", {})
        video_row = {**base, "status": "ok", "duration_s": s.get("duration_s"), "frames": s.get("frames"),
                     "frames_with_face": s.get("frames_with_faces")}
        ids = sorted(set(cols["face_id"].tolist()))
        if not ids:
            rows.append({**video_row, "face_id": ""})
        for fid in ids:
            m = cols["face_id"] == fid
            dom = cols["dominant"][m]
            row = {**video_row, "face_id": fid, "face_frames": int(m.sum())}
            for c in names:
                row[f"share_{c}"] = round(float((dom == c).mean()), 4)
            for c in names:
                row[f"mean_{c}"] = round(float(cols[c][m].mean()), 4)
            rows.append(row)
    columns = ["video", "status", "error", "csv", "duration_s", "frames", "frames_with_face", "face_id", "face_frames",
               *(f"share_{c}" for c in classes), *(f"mean_{c}" for c in classes)]
    return columns, rows


def write_summary(path: Path, columns: list[str], rows: list[dict]) -> None:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n", extrasaction="ignore")
    w.writeheader()
    w.writerows(rows)
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_text(buf.getvalue(), encoding="utf-8")
        os.replace(tmp, path)  # whole or not at all
    except OSError as exc:
        tmp.unlink(missing_ok=True)  # a full disk leaves no empty .tmp behind
        raise DanFerError(f"cannot write {path}: {exc.strerror or exc}") from exc


# ----------------------------------------------------------------------------------------- run


def run(args: argparse.Namespace) -> int:
    import multiprocessing as mp

    from tqdm import tqdm

    from dan_core.commands.batch_dask import run_on_dask, wants_dask
    from dan_core.commands.batch_pool import Pool

    dask = wants_dask(args)
    out_dir = Path(args.out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DanFerError(f"cannot create --out-dir {out_dir}: {exc.strerror or exc}") from exc
    videos = collect_inputs(args.inputs)
    if not videos:
        raise DanFerError("no videos found in the inputs")
    csvs = output_names(videos, out_dir)
    refuse_overwriting_inputs([*csvs, *(c.with_name(c.name + ".json") for c in csvs), out_dir / "summary.csv",
                               out_dir / "segments.csv"], videos)
    if dask:  # --scheduler / --cluster: the same batch, one Dask task per video
        return run_on_dask(args, videos, csvs)
    cores = os.cpu_count() or 1
    workers = args.workers if args.workers > 0 else max(1, cores // 2)
    workers = min(workers, len(videos))
    options = {**{name: getattr(args, name) for name in FIELDS},
               "threads": max(1, cores // workers), "overlap": workers == 1 or cores > 2 * workers}
    todo = [(str(v), str(c), options) for v, c in zip(videos, csvs) if args.force or not is_complete(c, v)]
    results: dict[str, dict] = {}
    t0 = time.perf_counter()
    bar_v = tqdm(total=len(videos), initial=len(videos) - len(todo), unit="video", desc="videos", position=0,
                 disable=args.no_progress, file=sys.stderr, dynamic_ncols=True)
    bar_f = tqdm(unit="frame", desc="frames", position=1, disable=args.no_progress, file=sys.stderr, dynamic_ncols=True)
    frames = [0]

    def on_progress(n: int) -> None:
        frames[0] += n
        bar_f.update(n)

    def on_result(task, result: dict) -> None:
        results[task[0]] = result
        bar_v.update(1)

    # spawn, not fork: no fork after threads, and each worker builds its own landmarker and session
    pool = Pool(mp.get_context("spawn"), workers, functools.partial(_worker_init, options["threads"]), _run_one)
    try:
        pool.run(todo, on_progress, on_result)  # Ctrl+C / SIGTERM / SIGHUP: no video is handed out after it
    finally:
        bar_f.close()
        bar_v.close()
    return _report(args, videos, csvs, results, len(todo), frames[0], time.perf_counter() - t0, workers, options["threads"])


def _report(args, videos: list[Path], csvs: list[Path], results: dict[str, dict], todo: int, frames: int, wall: float,
            workers: int, threads: int) -> int:
    """summary.csv (and segments.csv), then the per-video outcome on stdout (one JSON object with --json); 1 when some
    video failed."""
    from dan_core.commands.batch_segments import write_segments

    out_dir = Path(args.out_dir)
    columns, rows = summary_rows(videos, csvs, results)
    summary_error, segments, segment_errors = None, None, {}
    try:
        write_summary(out_dir / "summary.csv", columns, rows)
        segments, segment_errors = write_segments(args, videos, csvs, {r["video"] for r in rows if r["status"] == "ok"})
    except DanFerError as exc:  # a full disk: the per-video outcome is still told, then this error
        summary_error = exc
    failed = sorted({r["video"] for r in rows if r["status"] == "error"} | set(segment_errors))
    analysed = [r for r in results.values() if r.get("status") == "ok"]
    report = {"videos": len(videos), "analysed": len(analysed), "skipped_complete": len(videos) - todo,
              "failed": len(failed), "errors": {r["video"]: r.get("error") for r in rows if r["status"] == "error"},
              "frames": frames, "seconds": round(wall, 2), "fps": round(frames / wall, 2) if wall > 0 else 0.0,
              "workers": workers, "threads_per_worker": threads,
              "summary": None if summary_error else str(out_dir / "summary.csv"),
              "segments": str(segments) if segments else None, "segment_errors": segment_errors,
              "summary_error": str(summary_error) if summary_error else None}
    if args.json:
        print(json.dumps(report))
    else:
        print(f"{len(videos)} videos: {len(analysed)} analysed, {report['skipped_complete']} already complete, {len(failed)} failed; "
              f"{frames} frames in {wall:.1f} s ({report['fps']:.1f} fps, {workers} workers x {threads} threads)")
        for video, err in report["errors"].items():
            print(f"  failed: {video}: {err}")
        for video, err in segment_errors.items():
            print(f"  no segments: {video}: {err}")
        if summary_error is None:
            print(f"summary: {out_dir / 'summary.csv'}" + (f"; segments: {segments}" if segments else ""))
    if summary_error is not None:
        raise summary_error
    return 1 if failed else 0

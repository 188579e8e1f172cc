"""dan-fer bench: the face pipeline on a video: per-stage latency (median, p95) and end-to-end fps.

    dan-fer bench VIDEO [--frames 300] [--mosaic 2] [--json]

Its companion ``dan-fer bench-model`` measures DAN alone (training images/s, inference ms/face).

The analysis loop is the one ``dan-fer analyze`` runs (landmarks of the next frame overlap the
DAN batch of the current one, unless --no-overlap), without drawing or writing. Drawing is
timed afterwards on the last frames. An image input is repeated as a video of --frames frames;
``--mosaic 2`` tiles each frame 2 x 2 (four faces from the one-face test video).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import time
from pathlib import Path

import numpy as np

from dan_core.cli_fields import ranged
from dan_core.errors import DanFerError

STAGES = ("decode", "landmarks", "align", "infer", "track", "draw", "lsl", "latency", "interval")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from dan_core.pipeline.options import PIPELINE_FIELDS, add_options

    parser.add_argument("input", help="video file or image (an image is repeated as a video)")
    parser.add_argument("--frames", type=ranged(int, 1), default=300, help="frames to measure (default: 300)")
    parser.add_argument("--warmup", type=ranged(int, 0), default=10, help="frames run before measuring (default: 10)")
    parser.add_argument("--width", type=ranged(int, 0), default=0, help="resize frames to this width first (keeps the aspect ratio)")
    parser.add_argument("--mosaic", type=ranged(int, 1), default=1,
                        help="tile N x N copies of each frame into one frame of the same size (2: four faces)")
    parser.add_argument("--json", action="store_true", help="print the numbers as one JSON object")
    # --heatmap: the drawing that is timed; --lsl, --lsl-markers: the LSL outlets and marker placing are timed too
    add_options(parser, ("heatmap", "lsl", "lsl_markers", *PIPELINE_FIELDS))


def mosaic(img: np.ndarray, n: int) -> np.ndarray:
    """n x n copies of an image, each 1/n of the size, in a frame of the original size."""
    import cv2

    h, w = img.shape[:2]
    small = cv2.resize(img, (w // n, h // n), interpolation=cv2.INTER_AREA)
    out = np.zeros_like(img)
    for gy in range(n):
        for gx in range(n):
            out[gy * (h // n):(gy + 1) * (h // n), gx * (w // n):(gx + 1) * (w // n)] = small
    return out


def _frames(source, n: int, width: int, tiles: int = 1):
    """n frames from a source, looping a still image / rewinding a short video; optionally resized."""
    import cv2

    from dan_core.pipeline.sources import Frame, ImageSource

    fps = source.fps if not isinstance(source, ImageSource) else 25.0
    still = None
    i = 0
    while i < n:
        produced = False
        for frame in ([still] if still is not None else source):
            img = frame.image_bgr
            if width and img.shape[1] != width:
                img = cv2.resize(img, (width, int(round(img.shape[0] * width / img.shape[1]))), interpolation=cv2.INTER_AREA)
            if tiles > 1:
                img = mosaic(img, tiles)
            if isinstance(source, ImageSource):
                still = Frame(img, 0, 0.0)
            yield Frame(img, i, i / fps)
            produced = True
            i += 1
            if i >= n:
                return
        if not produced:
            raise DanFerError(f"no frames in {source.name}")
        if still is None:
            source.seek(0)


def run(args: argparse.Namespace) -> int:
    from dan_core.pipeline import Pipeline
    from dan_core.pipeline.draw import draw_results
    from dan_core.pipeline.heatmap import parse_heatmap
    from dan_core.pipeline.options import options_from
    from dan_core.pipeline.sources import open_source

    if args.frames < 1:
        raise DanFerError("--frames must be at least 1")
    source = open_source(args.input)
    study = None
    try:
        opts = options_from(args)
        with Pipeline(dataclasses.replace(opts.pipeline, mode="video")) as pipeline:  # an image: as a video of itself
            heatmap = parse_heatmap(opts.draw.heatmap, pipeline.num_heads)
            study = bench_study(args, pipeline.class_names, source.fps)
            samples: dict[str, list[float]] = {k: [] for k in STAGES}
            faces: list[int] = []
            keep: list = []
            n_total = args.warmup + args.frames
            t_start = None
            for frame, result in pipeline.stream(_frames(source, n_total, args.width, args.mosaic), overlap=opts.overlap):
                if frame.index == args.warmup:
                    t_start, cpu_start = time.perf_counter(), time.process_time()
                if frame.index < args.warmup:
                    continue
                for k in ("decode", "landmarks", "align", "infer", "track", "latency"):
                    samples[k].append(result.timings.get(k, 0.0))
                if frame.index > args.warmup:
                    samples["interval"].append(result.timings["total"])
                if study is not None:
                    t0 = time.perf_counter()
                    study.frame(result, time.monotonic())
                    samples["lsl"].append((time.perf_counter() - t0) * 1000.0)
                faces.append(len(result.faces))
                keep.append((frame.image_bgr, result))
                if len(keep) > 60:
                    keep.pop(0)
            wall = time.perf_counter() - t_start if t_start is not None else 0.0
            cpu = time.process_time() - cpu_start if t_start is not None else 0.0
            for img, result in keep:
                t0 = time.perf_counter()
                draw_results(img, result, pipeline.class_names, heatmap=heatmap)
                samples["draw"].append((time.perf_counter() - t0) * 1000.0)
            frame_size = keep[-1][1].frame_size if keep else (0, 0)
            backend = pipeline.backend
    finally:
        if study is not None:
            study.close()
        source.close()

    measured = len(faces)
    report = {
        "input": str(args.input), "frames": measured, "frame_size": list(frame_size),
        "faces_per_frame": round(float(np.mean(faces)), 2) if faces else 0.0,
        "fps": round(measured / wall, 2) if wall > 0 else 0.0,
        # CPU time of this process per frame, all threads: what a frame costs however busy the machine is
        "cpu_ms_per_frame": round(cpu * 1000.0 / measured, 2) if measured else 0.0,
        "backend": backend, "overlap": opts.overlap, "threads": opts.pipeline.threads, "cpu_count": os.cpu_count(),
        "load_avg": [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None,
        "stages_ms": {k: {"median": round(float(np.median(v)), 2), "p95": round(float(np.percentile(v, 95)), 2)}
                      for k, v in samples.items() if v},
    }
    if args.json:
        print(json.dumps(report))
        return 0
    print(f"{report['input']}: {measured} frames {frame_size[0]}x{frame_size[1]}, {report['faces_per_frame']} faces/frame, "
          f"{backend}, overlap {'on' if report['overlap'] else 'off'}, load average {report['load_avg']}")
    print(f"{'stage':<10} {'median ms':>10} {'p95 ms':>10}")
    notes = {"lsl": "  (LSL outlets and marker placing)",
             "latency": "  (frame read -> result)", "interval": "  (between results = 1/fps)", "draw": "  (not in fps)"}
    for k, v in report["stages_ms"].items():
        print(f"{k:<10} {v['median']:>10.2f} {v['p95']:>10.2f}{notes.get(k, '')}")
    print(f"end to end: {report['fps']:.1f} frames/s without drawing; CPU time {report['cpu_ms_per_frame']:.1f} ms per frame "
          f"(all threads, {report['cpu_count']} cores)")
    return 0


def bench_study(args: argparse.Namespace, class_names, fps: float):
    """--lsl / --lsl-markers: the StudyLinks a recording with them runs (markers go to a temporary events file)."""
    if not (args.lsl or args.lsl_markers):
        return None
    import tempfile

    from dan_core.pipeline.study import StudyLinks

    study = StudyLinks(lsl=args.lsl, lsl_markers=args.lsl_markers)
    study.set_classes(class_names, fps)
    if args.lsl_markers:
        study.start_recording(Path(tempfile.mkdtemp(prefix="dan-fer-bench-")) / "bench.csv")
    return study

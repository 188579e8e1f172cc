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
from collections import deque
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


class Measure:
    """bench's per-frame output: each measured frame's stage times (after the warm-up), its faces, and the last 60
    frames, drawn afterwards so that drawing is timed but not counted in the fps."""

    def __init__(self, warmup: int) -> None:
        self.warmup = warmup
        self.samples: dict[str, list[float]] = {k: [] for k in STAGES}
        self.faces: list[int] = []
        self.keep: deque = deque(maxlen=60)
        self.started: tuple[float, float] | None = None  # (wall, CPU) clocks at the first measured frame

    def frame(self, item) -> None:
        r = item.result
        if r.index == self.warmup:
            self.started = (time.perf_counter(), time.process_time())
        if r.index < self.warmup:
            return
        for k in ("decode", "landmarks", "align", "infer", "track", "latency"):
            self.samples[k].append(r.timings.get(k, 0.0))
        if r.index > self.warmup:
            self.samples["interval"].append(r.timings["total"])
        self.faces.append(len(r.faces))
        self.keep.append((item.image, r))

    def close(self) -> None:
        pass

    def elapsed(self) -> tuple[float, float]:
        """(wall, CPU) seconds since the first measured frame."""
        if self.started is None:
            return 0.0, 0.0
        return time.perf_counter() - self.started[0], time.process_time() - self.started[1]

    def time_drawing(self, class_names, heatmap: str) -> None:
        from dan_core.pipeline.draw import draw_results

        for img, result in self.keep:
            t0 = time.perf_counter()
            draw_results(img, result, class_names, heatmap=heatmap)
            self.samples["draw"].append((time.perf_counter() - t0) * 1000.0)


class Timed:
    """Another per-frame output, run on the measured frames only; its time per frame goes into ``samples``."""

    def __init__(self, output, samples: list[float], warmup: int) -> None:
        self.output, self.samples, self.warmup = output, samples, warmup

    def frame(self, item) -> None:
        if item.result.index < self.warmup:
            return
        t0 = time.perf_counter()
        self.output.frame(item)
        self.samples.append((time.perf_counter() - t0) * 1000.0)

    def close(self) -> None:
        self.output.close()


def run(args: argparse.Namespace) -> int:
    from dan_core.pipeline import Pipeline
    from dan_core.pipeline.heatmap import parse_heatmap
    from dan_core.pipeline.options import options_from
    from dan_core.pipeline.outputs import LslStream
    from dan_core.pipeline.sources import open_source
    from dan_core.pipeline.step import FrameStep, run_stream

    if args.frames < 1:
        raise DanFerError("--frames must be at least 1")
    opts = options_from(args)
    source = open_source(args.input)
    study = None
    try:
        with Pipeline(dataclasses.replace(opts.pipeline, mode="video")) as pipeline:  # an image: as a video of itself
            heatmap = parse_heatmap(opts.draw.heatmap, pipeline.num_heads)
            study = bench_study(opts.study, pipeline.class_names, source.fps)
            measure = Measure(args.warmup)
            # the analysis loop analyze runs, without drawing or writing; with --lsl the study's outputs, timed
            with FrameStep([measure, Timed(LslStream(study), measure.samples["lsl"], args.warmup) if study else None]) as step:
                run_stream(pipeline, _frames(source, args.warmup + args.frames, args.width, args.mosaic), step,
                           overlap=opts.overlap)
            wall, cpu = measure.elapsed()
            measure.time_drawing(pipeline.class_names, heatmap)
            backend = pipeline.backend
    finally:
        if study is not None:
            study.close()
        source.close()
    report = make_report(args, opts, measure, wall, cpu, backend)
    if args.json:
        print(json.dumps(report))
    else:
        print_report(report)
    return 0


def make_report(args: argparse.Namespace, opts, measure: Measure, wall: float, cpu: float, backend: str) -> dict:
    measured, faces = len(measure.faces), measure.faces
    return {
        "input": str(args.input), "frames": measured,
        "frame_size": list(measure.keep[-1][1].frame_size if measure.keep else (0, 0)),
        "faces_per_frame": round(float(np.mean(faces)), 2) if faces else 0.0,
        "fps": round(measured / wall, 2) if wall > 0 else 0.0,
        # CPU time of this process per frame, all threads: what a frame costs however busy the machine is
        "cpu_ms_per_frame": round(cpu * 1000.0 / measured, 2) if measured else 0.0,
        "backend": backend, "overlap": opts.overlap, "threads": opts.pipeline.threads, "cpu_count": os.cpu_count(),
        "head_pose": True, "blendshapes": opts.pipeline.blendshapes,  # the pose is always on; blendshapes with --blendshapes
        "load_avg": [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None,
        "stages_ms": {k: {"median": round(float(np.median(v)), 2), "p95": round(float(np.percentile(v, 95)), 2)}
                      for k, v in measure.samples.items() if v},
    }


def print_report(report: dict) -> None:
    w, h = report["frame_size"]
    print(f"{report['input']}: {report['frames']} frames {w}x{h}, {report['faces_per_frame']} faces/frame, "
          f"{report['backend']}, overlap {'on' if report['overlap'] else 'off'}, head pose on, blendshapes "
          f"{'on' if report['blendshapes'] else 'off'}, load average {report['load_avg']}")
    print(f"{'stage':<10} {'median ms':>10} {'p95 ms':>10}")
    notes = {"lsl": "  (LSL outlets and marker placing)",
             "latency": "  (frame read -> result)", "interval": "  (between results = 1/fps)", "draw": "  (not in fps)"}
    for k, v in report["stages_ms"].items():
        print(f"{k:<10} {v['median']:>10.2f} {v['p95']:>10.2f}{notes.get(k, '')}")
    print(f"end to end: {report['fps']:.1f} frames/s without drawing; CPU time {report['cpu_ms_per_frame']:.1f} ms per frame "
          f"(all threads, {report['cpu_count']} cores)")


def bench_study(options, class_names, fps: float):
    """--lsl / --lsl-markers: the StudyLinks a recording with them runs (markers go to a temporary events file)."""
    if not options.uses_lsl:
        return None
    import tempfile

    from dan_core.pipeline.study import open_study

    return open_study(options, class_names, fps, Path(tempfile.mkdtemp(prefix="dan-fer-bench-")) / "bench.csv")

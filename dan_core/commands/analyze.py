"""dan-fer analyze: a video, image, folder of images or camera -> emotion timeline CSV (+ annotated video)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from dan_core.errors import DanFerError
from dan_core.signals import exit_status, interrupts_between_frames, signal_name


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from dan_core.pipeline.options import PIPELINE_FIELDS, STUDY_FIELDS, add_options

    parser.add_argument("input", help="video file, image, folder of images, or camera index (0, 1, ...)")
    parser.add_argument("--csv", required=True, help="timeline CSV to write (a JSON sidecar <csv>.json goes beside it)")
    parser.add_argument("--annotated", default=None, help="also write the annotated frames: a video (.mp4) or, for one image, "
                        "an image file (drawn with --heatmap, --opacity, --landmarks)")
    parser.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    parser.add_argument("--force", action="store_true", help="overwrite existing output files")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_options(parser, ("every", "heatmap", "opacity", "landmarks", *STUDY_FIELDS, *PIPELINE_FIELDS))


class ProgressBar:
    """analyze's per-frame output for its progress bar: a tick per frame, the faces in view every 10 frames."""

    def __init__(self, bar) -> None:
        self.bar, self.frames = bar, 0

    def frame(self, item) -> None:
        self.bar.update(1)
        self.frames += 1
        if self.frames % 10 == 0:
            self.bar.set_postfix(faces=len(item.result.faces), refresh=False)

    def close(self) -> None:
        pass


def check_outputs(args: argparse.Namespace) -> tuple[Path, Path | None]:
    """The CSV and --annotated paths, refused with one line before any work: a typo in a folder name must not cost a
    whole run, and none may be the input (--force or not)."""
    from dan_core.paths import check_writable, refuse_overwriting_inputs
    from dan_core.pipeline.events import events_path
    from dan_core.pipeline.timeline import sidecar_path

    inputs = [] if str(args.input).isdigit() else [args.input]
    csv_path = check_writable(args.csv, force=args.force, what="CSV", inputs=inputs)
    ann_path = check_writable(args.annotated, force=args.force, what="annotated output", inputs=inputs) if args.annotated else None
    refuse_overwriting_inputs([sidecar_path(csv_path), events_path(csv_path)], inputs, what="CSV sidecar")
    if ann_path is not None and ann_path.resolve() == csv_path.resolve():
        raise DanFerError("--annotated and --csv name the same file")
    return csv_path, ann_path


def run(args: argparse.Namespace) -> int:
    from dan_core.pipeline import Pipeline
    from dan_core.pipeline.options import configure_lsl, options_from
    from dan_core.pipeline.sources import open_source

    csv_path, ann_path = check_outputs(args)
    opts = options_from(args)
    configure_lsl(opts.study)
    source = open_source(args.input)
    try:
        with Pipeline(opts.config_for(source)) as pipeline:
            analysis = Analysis(args, opts, source, pipeline)
            summary = analysis.run(csv_path, ann_path)
    finally:
        source.close()
    if args.json:
        print(json.dumps(summary))
    else:
        print_summary(summary)
    return int(analysis.interrupted)  # 0, or 130 (Ctrl+C) / 143 (SIGTERM) like the shell


class Analysis:
    """One ``analyze`` run of an open source through an open pipeline: its files, its per-frame step, its summary."""

    def __init__(self, args: argparse.Namespace, opts, source, pipeline) -> None:
        import dataclasses

        from dan_core.pipeline.heatmap import parse_heatmap
        from dan_core.pipeline.sources import ImageSource

        self.args, self.opts, self.source, self.pipeline = args, opts, source, pipeline
        # a --heatmap this model cannot draw is refused before any file is written
        self.draw = dataclasses.replace(opts.draw, heatmap=parse_heatmap(opts.draw.heatmap, pipeline.num_heads))
        self.still = isinstance(source, ImageSource)
        self.fps = source.fps / opts.every if not self.still else 1.0
        self.interrupted = 0  # exit status of an interrupt: 130 Ctrl+C, 143 SIGTERM, 141 a reader gone
        from dan_core.pipeline.options import EveryNth
        from dan_core.pipeline.outputs import FrameAccount

        self.frames_in = EveryNth(source, opts.every)  # counts the frames read, processed or skipped
        self.account = FrameAccount(every=opts.every, fps=source.fps)

    def run(self, csv_path: Path, ann_path: Path | None) -> dict:
        """Analyse every frame into the CSV (and --annotated); the summary. Whatever was written stays on disk."""
        from dan_core.pipeline.recorder import Recorder
        from dan_core.pipeline.study import open_study

        p, o = self.pipeline, self.opts
        single = self.still and self.source.frame_count == 1
        recorder = Recorder(csv_path, p.class_names, meta=self.meta(), force=self.args.force, video_path=ann_path, fps=self.fps,
                            single_image=single, blendshapes=p.config.blendshapes)
        study = None
        try:
            study = open_study(o.study, p.class_names, self.fps, csv_path, force=self.args.force)
            totals, wall = self.stream(recorder, study, annotated=ann_path is not None, independent=self.still and not single)
            summary = self.summary(csv_path, ann_path, totals, recorder.rows, wall)
            summary["events"] = study.stop_recording()
            recorder.close(summary={k: summary[k] for k in ("frames", "faces", "fps", "stopped_early", "interrupted", "signal",
                                                            "events")}, **self.accounting(recorder))
        finally:
            if study is not None:
                study.close()
            recorder.close()
        return summary

    def stream(self, recorder, study, *, annotated: bool, independent: bool):
        """The per-frame step: record, stream, draw, write the drawing, count, show progress. (totals, wall seconds)"""
        from tqdm import tqdm

        from dan_core.pipeline.outputs import Annotate, AnnotatedVideo, LslStream, RunTotals, TimelineRows
        from dan_core.pipeline.step import FrameStep, run_stream

        p, o, src = self.pipeline, self.opts, self.source
        totals = RunTotals()
        bar = tqdm(total=-(-src.frame_count // o.every) if src.frame_count else None, unit="frame", leave=False,
                   desc=Path(str(self.args.input)).name[:30] or "input", disable=self.args.no_progress, file=sys.stderr,
                   dynamic_ncols=True)
        step = FrameStep([
            TimelineRows(recorder),
            self.account,
            LslStream(study) if study.active else None,
            Annotate(p.class_names, self.draw) if annotated else None,
            AnnotatedVideo(recorder) if annotated else None,
            totals,
            ProgressBar(bar),
        ])
        t0 = time.perf_counter()
        try:
            # Ctrl+C / SIGTERM stop after the current frame: the CSV and the video end on the same one
            with step, interrupts_between_frames() as stop:
                run_stream(p, self.frames_in, step, overlap=o.overlap, independent=independent,
                           stop=lambda: bool(stop.signum))
            self.interrupted = stop.status
        except (KeyboardInterrupt, BrokenPipeError) as exc:  # a second Ctrl+C / SIGTERM: at once, mid-frame; or the
            self.interrupted = exit_status(exc)  # reader of the progress went away (| head): keep everything, record why
        except DanFerError as exc:  # an output failed (a full disk) and has stopped: finish the rest, then say why
            recorder.close(summary={"frames": totals.frames, "error": str(exc)}, **self.accounting(recorder))
            raise
        finally:
            try:
                bar.close()
            except BrokenPipeError:
                self.interrupted = self.interrupted or exit_status(BrokenPipeError())
        return totals, time.perf_counter() - t0

    def meta(self) -> dict:
        from dan_core.pipeline.provenance import run_record

        src = self.source
        return run_record(self.pipeline, source=str(self.args.input), source_fps=src.fps, source_frames=src.frame_count,
                          live=src.is_live, every=self.opts.every, fps=self.fps, made_by="dan-fer analyze")

    def accounting(self, recorder) -> dict:
        """The sidecar's frame accounting: read, processed, skipped by --every, dropped, rows; and the frame size."""
        size = self.account.frame_size
        return {"frames": self.account.totals(read=self.frames_in.read, rows=recorder.rows),
                "source_size": list(size) if size else None}

    def summary(self, csv_path: Path, ann_path: Path | None, totals, rows: int, wall: float) -> dict:
        n, p = totals.frames, self.pipeline
        return {
            "input": str(self.args.input), "csv": str(csv_path), "annotated": str(ann_path) if ann_path else None,
            "frames": n, "frames_with_faces": totals.with_faces, "frames_without_faces": n - totals.with_faces,
            "faces": len(totals.dominant), "rows": rows, "seconds": round(wall, 2),
            "accounting": self.account.totals(read=self.frames_in.read, rows=rows),
            "fps": round(n / wall, 2) if wall > 0 else 0.0, "backend": p.backend, "model": p.model_name,
            "per_face": totals.per_face(p.class_names), "stopped_early": self.source.error,
            "interrupted": bool(self.interrupted), "signal": signal_name(self.interrupted),
            "skipped_images": getattr(self.source, "skipped", []),
        }


def print_summary(s: dict) -> None:
    print(f"{s['frames']} frames in {s['seconds']:.1f} s ({s['fps']:.1f} fps, {s['backend']}, {s['model']})")
    print(f"faces: {s['faces']} tracked; frames with a face: {s['frames_with_faces']}, without: {s['frames_without_faces']}")
    for fid, face in s["per_face"].items():  # shares of frames, said so: "neutral 100%" read like a probability
        shares = sorted(face["dominant_share"].items(), key=lambda kv: -kv[1])
        text = ", ".join(f"{name} in {share * 100:.0f}% of them" for name, share in shares[:4])
        print(f"  face #{fid}: {face['frames']} frames, {face['first_s']:.1f}-{face['last_s']:.1f} s; most probable class: {text}")
    a = s.get("accounting")
    if a and (a["dropped"] or a["skipped_every"]):
        print(f"frames: {a['read']} read, {a['processed']} processed, {a['skipped_every']} skipped by --every, "
              f"{a['dropped']} dropped")
    if s["stopped_early"]:
        print(f"note: {s['stopped_early']}; all rows up to there are kept")
    for msg in s["skipped_images"]:
        print(f"skipped: {msg}")
    if s["interrupted"]:
        print(f"interrupted ({s['signal']}): rows written so far are kept")
    print(f"timeline: {s['csv']} ({s['rows']} rows)" + (f"; annotated: {s['annotated']}" if s["annotated"] else ""))

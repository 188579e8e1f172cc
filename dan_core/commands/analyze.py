"""dan-fer analyze: a video, image, folder of images or camera -> emotion timeline CSV (+ annotated video)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

from dan_core.errors import DanFerError
from dan_core.signals import exit_status, interrupts_between_frames, signal_name


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from dan_core.pipeline.options import LSL_FIELDS, PIPELINE_FIELDS, add_options

    parser.add_argument("input", help="video file, image, folder of images, or camera index (0, 1, ...)")
    parser.add_argument("--csv", required=True, help="timeline CSV to write (a JSON sidecar <csv>.json goes beside it)")
    parser.add_argument("--annotated", default=None, help="also write the annotated frames: a video (.mp4) or, for one image, "
                        "an image file (drawn with --heatmap, --opacity, --landmarks)")
    parser.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    parser.add_argument("--force", action="store_true", help="overwrite existing output files")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_options(parser, ("every", "heatmap", "opacity", "landmarks", *LSL_FIELDS, *PIPELINE_FIELDS))


def summarize(stats: dict, class_names) -> dict:
    per_face = {}
    for fid, counts in sorted(stats["dominant"].items()):
        n = sum(counts.values())
        per_face[str(fid)] = {
            "frames": n,
            "first_s": round(stats["first"][fid], 3), "last_s": round(stats["last"][fid], 3),
            "dominant_share": {c: round(counts[c] / n, 4) for c in class_names if counts[c]},
        }
    return per_face


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from dan_core.paths import check_writable, refuse_overwriting_inputs
    from dan_core.pipeline import Pipeline
    from dan_core.pipeline.draw import draw_results
    from dan_core.pipeline.events import events_path
    from dan_core.pipeline.heatmap import parse_heatmap
    from dan_core.pipeline.options import configure_lsl, every_nth, options_from
    from dan_core.pipeline.recorder import Recorder
    from dan_core.pipeline.sources import ImageSource, open_source
    from dan_core.pipeline.study import StudyLinks, stamped
    from dan_core.pipeline.timeline import sidecar_path

    # outputs first: a typo in a folder name must not cost a whole run; none may be the input, --force or not
    inputs = [] if str(args.input).isdigit() else [args.input]
    csv_path = check_writable(args.csv, force=args.force, what="CSV", inputs=inputs)
    ann_path = check_writable(args.annotated, force=args.force, what="annotated output", inputs=inputs) if args.annotated else None
    refuse_overwriting_inputs([sidecar_path(csv_path), events_path(csv_path)], inputs, what="CSV sidecar")
    if ann_path is not None and ann_path.resolve() == csv_path.resolve():
        raise DanFerError("--annotated and --csv name the same file")

    opts = options_from(args)
    configure_lsl(opts.study)
    source = open_source(args.input)
    recorder = study = None
    interrupted = 0  # exit status of an interrupt: 130 Ctrl+C, 143 SIGTERM
    stats: dict = {"dominant": defaultdict(Counter), "first": {}, "last": {}}
    frames = frames_with_faces = 0
    try:
        pipeline = Pipeline(opts.config_for(source))
        with pipeline:
            heatmap = parse_heatmap(opts.draw.heatmap, pipeline.num_heads)
            single = isinstance(source, ImageSource) and source.frame_count == 1
            out_fps = source.fps / opts.every if not isinstance(source, ImageSource) else 1.0
            meta = {
                "source": str(args.input), "source_fps": source.fps, "fps": out_fps, "every": opts.every,
                "source_frames": source.frame_count, "live": source.is_live, **pipeline.describe(),
            }
            recorder = Recorder(csv_path, pipeline.class_names, meta=meta, force=args.force, video_path=ann_path, fps=out_fps,
                                single_image=single)
            study = StudyLinks(lsl=opts.study.lsl, lsl_markers=opts.study.lsl_markers)
            study.set_classes(pipeline.class_names, out_fps)
            if opts.study.lsl_markers:
                study.start_recording(csv_path, force=args.force)
            total = -(-source.frame_count // opts.every) if source.frame_count else None
            t0 = time.perf_counter()
            bar = tqdm(total=total, unit="frame", desc=Path(str(args.input)).name[:30] or "input", leave=False,
                       disable=args.no_progress, file=sys.stderr, dynamic_ncols=True)
            try:
                frames_in = every_nth(source, opts.every)
                if study.active:
                    frames_in, seen_at = stamped(frames_in)
                # Ctrl+C / SIGTERM stop the loop after the current frame: the CSV and the video end on the same one
                with interrupts_between_frames() as stop:
                    for frame, result in pipeline.stream(frames_in, overlap=opts.overlap,
                                                         independent=single is False and isinstance(source, ImageSource)):
                        recorder.write(result)
                        if study.active:
                            study.frame(result, seen_at.pop(result.index, time.monotonic()))
                        if ann_path is not None:
                            recorder.write_image(draw_results(frame.image_bgr, result, pipeline.class_names, heatmap=heatmap,
                                                              opacity=opts.draw.opacity, landmarks=opts.draw.landmarks))
                        frames += 1
                        frames_with_faces += bool(result.faces)
                        for f in result.faces:
                            stats["dominant"][f.face_id][f.dominant] += 1
                            stats["first"].setdefault(f.face_id, result.time_s)
                            stats["last"][f.face_id] = result.time_s
                        bar.update(1)
                        if frames % 10 == 0:
                            bar.set_postfix(faces=len(result.faces), refresh=False)
                        if stop.signum:
                            break
                interrupted = stop.status
            except (KeyboardInterrupt, BrokenPipeError) as exc:  # a second Ctrl+C / SIGTERM: at once, mid-frame; or the
                interrupted = exit_status(exc)  # reader of the progress went away (| head): keep everything, record why
            except DanFerError as exc:  # an output failed (a full disk) and has stopped: finish the rest, then say why
                recorder.close(summary={"frames": frames, "error": str(exc)})
                raise
            finally:
                try:
                    bar.close()
                except BrokenPipeError:
                    interrupted = interrupted or exit_status(BrokenPipeError())
            wall = time.perf_counter() - t0
            summary = {
                "input": str(args.input), "csv": str(csv_path), "annotated": str(ann_path) if ann_path else None,
                "frames": frames, "frames_with_faces": frames_with_faces, "frames_without_faces": frames - frames_with_faces,
                "faces": len(stats["dominant"]), "rows": recorder.rows, "seconds": round(wall, 2),
                "fps": round(frames / wall, 2) if wall > 0 else 0.0, "backend": pipeline.backend, "model": pipeline.model_name,
                "per_face": summarize(stats, pipeline.class_names),
                "stopped_early": source.error, "interrupted": bool(interrupted),
                "signal": signal_name(interrupted),
                "skipped_images": getattr(source, "skipped", []),
            }
            events = study.stop_recording()
            summary["events"] = events
            recorder.close(summary={k: summary[k] for k in ("frames", "faces", "fps", "stopped_early", "interrupted", "signal",
                                                            "events")})
    finally:
        if study is not None:
            study.close()
        if recorder is not None:
            recorder.close()
        source.close()
    if args.json:
        print(json.dumps(summary))
    else:
        print_summary(summary)
    return int(interrupted)  # 0, or 130 (Ctrl+C) / 143 (SIGTERM) like the shell


def print_summary(s: dict) -> None:
    print(f"{s['frames']} frames in {s['seconds']:.1f} s ({s['fps']:.1f} fps, {s['backend']}, {s['model']})")
    print(f"faces: {s['faces']} tracked; frames with a face: {s['frames_with_faces']}, without: {s['frames_without_faces']}")
    for fid, face in s["per_face"].items():
        shares = sorted(face["dominant_share"].items(), key=lambda kv: -kv[1])
        text = ", ".join(f"{name} {share * 100:.0f}%" for name, share in shares[:4])
        print(f"  face #{fid}: {face['frames']} frames, {face['first_s']:.1f}-{face['last_s']:.1f} s: {text}")
    if s["stopped_early"]:
        print(f"note: {s['stopped_early']}; all rows up to there are kept")
    for msg in s["skipped_images"]:
        print(f"skipped: {msg}")
    if s["interrupted"]:
        print(f"interrupted ({s['signal']}): rows written so far are kept")
    print(f"timeline: {s['csv']} ({s['rows']} rows)" + (f"; annotated: {s['annotated']}" if s["annotated"] else ""))

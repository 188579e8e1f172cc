"""Command-line options shared by the commands that run the pipeline (analyze, bench)."""

from __future__ import annotations

import argparse
from collections.abc import Iterator

from dan_core.cli_fields import ranged
from dan_core.pipeline.backends import BACKENDS
from dan_core.pipeline.core import PipelineConfig
from dan_core.pipeline.lsl import STREAM_NAME
from dan_core.pipeline.lsl_scope import DEFAULT_SCOPE, SCOPES
from dan_core.pipeline.sources import Frame, FrameSource, VideoSource, source_mode


def add_pipeline_arguments(parser: argparse.ArgumentParser, *, smoothing: float = 0.0) -> None:
    g = parser.add_argument_group("pipeline")
    g.add_argument("--model", default=None, help="DAN model (.onnx, or .pt with --backend torch); default: the one in models/ "
                   "or $DAN_FER_MODEL")
    g.add_argument("--landmarker", default=None, help="MediaPipe face_landmarker.task; default: $DAN_FER_LANDMARKER, "
                   "the copy in models/, the per-user cache, else a verified download")
    g.add_argument("--backend", default="auto", choices=BACKENDS,
                   help="inference backend (default: auto = CUDA if really usable)")
    g.add_argument("--max-faces", type=ranged(int, 1), default=4, help="most faces per frame (default: 4)")
    g.add_argument("--smoothing", type=ranged(float, 0, 1, high_open=True), default=smoothing,
                   help=f"EMA factor per face in [0, 1), 0 = off (default: {smoothing})")
    g.add_argument("--max-missed", type=ranged(int, 0), default=10, help="frames a face may be unseen before its ID ends (default: 10)")
    g.add_argument("--threads", type=ranged(int, 0), default=0, help="ONNX Runtime threads (default: 0 = one per core)")
    g.add_argument("--no-overlap", action="store_true", help="run landmarks and DAN one after the other (no worker thread)")


def add_lsl_arguments(parser: argparse.ArgumentParser) -> None:
    """--lsl, --lsl-markers, --lsl-scope and --lsl-name, for every command that analyses a source (analyze, bench, app)."""
    parser.add_argument("--lsl", action="store_true", help="stream each face's probabilities over Lab Streaming Layer "
                        "(type FacialExpression) and our markers (type Markers)")
    parser.add_argument("--lsl-markers", action="store_true", help="record the markers of every LSL stream of type Markers "
                        "into <csv>.events.csv (source=lsl)")
    parser.add_argument("--lsl-scope", choices=SCOPES, default=DEFAULT_SCOPE,
                        help="machine (default): LSL streams and sockets stay on this computer; lab: liblsl's own "
                        "settings, streams open to the local network (LSL has no authentication)")
    parser.add_argument("--lsl-name", default=STREAM_NAME, help=f"name of our LSL streams (default: {STREAM_NAME}; "
                        "<name>-markers for the markers); a second dan-fer on one computer needs its own")


def configure_lsl(args: argparse.Namespace) -> None:
    """Apply --lsl-scope / --lsl-name to this process when LSL is used at all."""
    if getattr(args, "lsl", False) or getattr(args, "lsl_markers", False):
        from dan_core.pipeline.lsl import configure

        configure(scope=args.lsl_scope, name=args.lsl_name)


def config_from_args(args: argparse.Namespace, source: FrameSource) -> PipelineConfig:
    return PipelineConfig(
        model=args.model, landmarker=args.landmarker, backend=args.backend, max_faces=args.max_faces,
        smoothing=args.smoothing, max_missed=args.max_missed, threads=args.threads,
        mode=source_mode(source),
    )


def every_nth(source: FrameSource, every: int) -> Iterator[Frame]:
    """Frames 0, N, 2N, ... of a source; videos skip the others without decoding them."""
    if every <= 1:
        yield from source
        return
    if isinstance(source, VideoSource):
        it = iter(source)
        for frame in it:
            yield frame
            source.skip(every - 1)
        return
    for frame in source:
        if frame.index % every == 0:
            yield frame

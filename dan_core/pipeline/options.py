"""The options of a run of the pipeline, each written once: ``AnalysisOptions``.

Its fields (with their help, ranges and defaults) are the flags of ``dan-fer analyze``, ``batch``,
``bench`` and ``app``: each command names the fields it offers (``add_options(parser, FIELDS)``) and,
where its default differs, says so (``batch`` runs on the CPU by default, the app's flags default to
the saved setting). The app's settings take their defaults from the same fields. A value out of
range is one error line (``cli_fields.ranged``).

    AnalysisOptions
      pipeline: PipelineConfig   model, landmarker, backend, max_faces, smoothing, max_missed, threads,
                                 min_face_confidence, blendshapes
      overlap, every             how frames go through it
      draw: RenderOptions        heatmap, opacity, landmarks (annotated output, the app's view)
      study: StudyOptions        lsl, lsl_markers, lsl_scope, lsl_name (study.py)
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from dan_core import cli_fields
from dan_core.cli_fields import option
from dan_core.pipeline.core import PIPELINE, PipelineConfig
from dan_core.pipeline.render import RenderOptions
from dan_core.pipeline.sources import Frame, FrameSource, VideoSource, source_mode
from dan_core.pipeline.study import StudyOptions


@dataclass
class AnalysisOptions:
    pipeline: PipelineConfig = option(PipelineConfig, "the pipeline", nested=True)
    overlap: bool = option(True, "overlap the landmarks of the next frame with DAN on this one (a worker thread)",
                           group=PIPELINE, flag="--no-overlap")
    every: int = option(1, "process every N-th frame", bounds=(1, None))
    draw: RenderOptions = option(RenderOptions, "drawing", nested=True)
    study: StudyOptions = option(StudyOptions, "studies", nested=True)

    def config_for(self, source: FrameSource | str) -> PipelineConfig:
        """The pipeline's config for ``source``: its landmarker mode follows the source (photos: image mode)."""
        return dataclasses.replace(self.pipeline, mode=source_mode(source))


PIPELINE_FIELDS = ("model", "landmarker", "backend", "precision", "max_faces", "smoothing", "max_missed", "threads",
                   "min_face_confidence", "blendshapes", "overlap")
STUDY_FIELDS = tuple(f.name for f in dataclasses.fields(StudyOptions))  # every study option: LSL, marker sources


def add_options(parser: argparse.ArgumentParser, fields: Collection[str], *, defaults: Mapping[str, Any] | None = None,
                unset: str = "") -> None:
    """The flags of ``fields`` (names of ``AnalysisOptions``' fields, nested ones included) on ``parser``."""
    cli_fields.add_arguments(parser, AnalysisOptions, only=fields, defaults=defaults, unset=unset)


def options_from(values: argparse.Namespace | Mapping[str, Any]) -> AnalysisOptions:
    """``AnalysisOptions`` from parsed flags or a plain mapping (e.g. ``batch.analyze_video``'s); what is missing keeps
    its default."""
    if isinstance(values, Mapping):
        values = argparse.Namespace(**values)
    return cli_fields.from_args(AnalysisOptions, values)


def configure_lsl(study: StudyOptions) -> None:
    """Apply --lsl-scope / --lsl-name to this process when LSL is used at all."""
    if study.uses_lsl:
        from dan_core.pipeline.lsl import configure

        configure(scope=study.lsl_scope, name=study.lsl_name)


class EveryNth:
    """Frames 0, N, 2N, ... of a source; videos skip the others without decoding them. ``read``: the frames taken
    from the source so far, processed or skipped (the sidecar's frame accounting)."""

    def __init__(self, source: FrameSource, every: int) -> None:
        self.source, self.every, self.read = source, max(int(every), 1), 0

    def __iter__(self) -> Iterator[Frame]:
        source, every = self.source, self.every
        if every > 1 and isinstance(source, VideoSource):
            for frame in source:
                self.read += 1
                yield frame
                self.read += source.skip(every - 1)
            return
        for frame in source:
            self.read += 1
            if frame.index % every == 0:
                yield frame

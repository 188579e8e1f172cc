"""The face pipeline (no Qt): MediaPipe landmarks -> alignment -> batched DAN -> tracks.

``Pipeline`` (core.py) processes frames; ``sources`` reads cameras, videos, images and folders;
``draw`` and ``heatmap`` annotate frames; ``recorder`` and ``timeline`` write the timeline CSV
and the annotated video; ``live``, ``playback`` and ``render`` run it for a viewer (the app).
"""

from dan_core.pipeline.core import Detections, FaceResult, FrameResult, Pipeline, PipelineConfig

__all__ = ["Detections", "FaceResult", "FrameResult", "Pipeline", "PipelineConfig"]

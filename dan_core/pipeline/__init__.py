"""The face pipeline (no Qt): MediaPipe landmarks -> alignment -> batched DAN -> tracks.

``Pipeline`` (core.py) processes frames; ``sources`` reads cameras, videos, images and folders;
``step`` hands each classified frame to the outputs a front end chose (``outputs``: record,
stream, draw, count); ``options`` holds every option of a run; ``draw`` and ``heatmap`` annotate
frames; ``recorder``, ``timeline`` and ``columns`` write the timeline CSV and the annotated video;
``live``, ``playback`` and ``render`` run it for a viewer (the app).
"""

from dan_core.pipeline.core import Detections, FaceResult, FrameResult, Pipeline, PipelineConfig

__all__ = ["Detections", "FaceResult", "FrameResult", "Pipeline", "PipelineConfig"]

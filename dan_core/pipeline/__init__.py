"""The live face pipeline (no Qt): MediaPipe landmarks -> alignment -> batched DAN -> tracks.

``Pipeline`` processes frames; ``sources`` reads cameras, videos, images and folders;
``draw`` annotates frames; ``timeline`` writes the emotion timeline CSV.
"""

from dan_core.pipeline.core import Detections, FaceResult, FrameResult, Pipeline, PipelineConfig

__all__ = ["Detections", "FaceResult", "FrameResult", "Pipeline", "PipelineConfig"]

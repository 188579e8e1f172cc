"""What the engine tells the window: one small frozen dataclass per message, no Qt.

The engine (a worker thread) emits these through ``Signal(object)``; the window only reads them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dan_core.pipeline import FrameResult


@dataclass(frozen=True)
class AppError:
    """A problem shown in the window's banner. ``kind`` picks the actions offered next to it."""

    kind: str  # "camera" | "source" | "camera_lost" | "source_failed" | "model" | "landmarker" | "record" | "internal"
    message: str


@dataclass(frozen=True)
class SourceInfo:
    spec: str
    name: str
    is_live: bool
    is_still: bool
    fps: float
    duration_s: float | None
    mode: str = "video"  # the landmarker mode it needs: "image" for photos and folders of photos
    frames: int | None = None  # frames of a file, when it says

    def record(self) -> dict:
        """What a recording's sidecar says of this source (``provenance.run_record``'s source fields)."""
        return {"source": self.spec, "source_fps": self.fps or None, "source_frames": self.frames, "live": self.is_live}


@dataclass(frozen=True)
class PipelineInfo:
    backend: str
    model_name: str
    class_names: tuple[str, ...]
    num_heads: int
    input_size: int
    train_dataset: str = ""


@dataclass(frozen=True)
class RecordingInfo:
    active: bool
    csv_path: Path | None
    video_path: Path | None = None
    rows: int = 0
    message: str = ""


@dataclass
class Packet:
    """One displayed frame: the annotated picture and what the panels need."""

    seq: int
    image: np.ndarray  # (H, W, 3) uint8 BGR, annotated, C-contiguous, frame resolution (snapshots, recording)
    display: np.ndarray  # the same scaled to fit the view, BGRA (what the UI thread blits as it is)
    result: FrameResult | None  # None while no model is loaded
    media_time_s: float
    captured_at: float  # time.monotonic() when the frame left the source
    published_at: float
    capture_fps: float
    processed_fps: float
    heads: np.ndarray | None = None  # (S, (K+2)*S, 4) BGRA strip for the selected face: crop, fused, head1..K
    heads_face_id: int | None = None
    recording_rows: int | None = None
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def latency_ms(self) -> float:
        return (self.published_at - self.captured_at) * 1000.0


def pipeline_error_kind(message: str) -> str:
    """Which banner (and which next step) a pipeline error gets: landmarker, backend or model."""
    text = message.lower()
    if "landmark" in text or ".task" in text:
        return "landmarker"
    if "--backend" in text or "cuda" in text or "driver" in text:
        return "backend"
    return "model"

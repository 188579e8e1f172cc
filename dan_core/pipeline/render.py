"""What a viewer shows of one frame, made off its UI thread (no Qt).

The annotated picture at frame resolution (for snapshots and the recorded video), the same picture
scaled to the view in BGRA, the layout Qt paints without converting (the desktop app's UI thread
blits it as it is), and the selected face's strip of attention tiles for a side panel. ``LiveView``
is the live view's drawing as a per-frame output (``step.FrameOutput``).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from dan_core.cli_fields import option
from dan_core.pipeline.boxes import selected_or_largest
from dan_core.pipeline.core import FaceResult, FrameResult
from dan_core.pipeline.draw import draw_results
from dan_core.pipeline.heatmap import head_strip

log = logging.getLogger(__name__)


DRAWING = "drawing"  # the options' group in --help


@dataclass
class RenderOptions:
    """How frames are drawn: a viewer's (changed from its UI thread at any time) or an annotated output's.
    The fields with help are the commands' drawing options (``options``) and the app's defaults."""

    heatmap: str = option("fused", "attention overlay on each face: fused, off, all or head1..headK", group=DRAWING)
    opacity: float = option(0.5, "heatmap opacity", group=DRAWING, bounds=(0, 1))
    landmarks: bool = option(False, "draw the 478 face landmarks", group=DRAWING)
    face_bars: bool = False  # probability bars drawn beside each face (the side panel always has them)
    selected_id: int | None = None
    view_size: tuple[int, int] | None = None  # device pixels of the view: frames are scaled here, not on the UI thread


@dataclass
class Rendered:
    image: np.ndarray  # (H, W, 3) uint8 BGR, annotated, C-contiguous, frame resolution
    display: np.ndarray  # the same scaled to fit the view, BGRA
    heads: np.ndarray | None = None  # (S, (K+2)*S, 4) BGRA strip for the selected face: crop, fused, head1..K
    heads_face_id: int | None = None
    draw_ms: float = 0.0


class Renderer:
    """Draws results onto frames; keeps the last head strip (it refreshes at most every HEADS_INTERVAL_S while playing)."""

    HEADS_INTERVAL_S = 1 / 12  # the attention tiles cost a few ms each; the eye does not need them at video rate

    def __init__(self) -> None:
        self._heads_cache: tuple[float, int, np.ndarray] | None = None  # (when, face id, BGRA strip)
        self.last_image: np.ndarray | None = None  # the last annotated picture (snapshots)

    def save_snapshot(self, path: Path) -> bool:
        """Write the last annotated picture to ``path`` (a PNG); False when it cannot be written."""
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            return bool(self.last_image is not None and cv2.imwrite(str(path), self.last_image))
        except (OSError, cv2.error) as exc:
            log.warning("snapshot failed: %s", exc)
            return False

    def render(self, image: np.ndarray, result: FrameResult | None, class_names: tuple[str, ...] | None,
               opts: RenderOptions, *, fresh: bool) -> Rendered:
        """``fresh``: a newly analysed frame (else a redraw of the last one with new options: tiles follow at once)."""
        t0 = time.perf_counter()
        heads = heads_id = None
        if result is not None and class_names is not None:
            image = draw_results(image, result, class_names, heatmap=opts.heatmap, opacity=opts.opacity,
                                 landmarks=opts.landmarks, bars=opts.face_bars, selected_id=opts.selected_id)
            face = selected_face(result, opts.selected_id)
            if face is not None:
                now = time.monotonic()
                cached = self._heads_cache
                if cached is None or not fresh or cached[1] != face.face_id or now - cached[0] >= self.HEADS_INTERVAL_S:
                    cached = self._heads_cache = (now, face.face_id, bgra(head_strip(face, opacity=max(opts.opacity, 0.35))))
                heads, heads_id = cached[2], face.face_id
        elif image.ndim == 2:
            image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
        elif image.shape[2] == 4:
            image = image[:, :, :3]
        image = np.ascontiguousarray(image)
        draw_ms = (time.perf_counter() - t0) * 1000.0
        self.last_image = image
        display = bgra(fit_to(image, opts.view_size))  # scaled and in Qt's native layout, here and not on the UI thread
        return Rendered(image, display, heads, heads_id, draw_ms)


class LiveView:
    """The live view's drawing, a per-frame output: what the viewer shows (``render.Renderer``) with its options of
    the moment. Its picture (``item.annotated``) is what the recording's video gets."""

    def __init__(self) -> None:
        self.renderer = Renderer()
        self.options = RenderOptions()
        self.class_names: tuple[str, ...] | None = None
        self.rendered: Rendered | None = None  # of the last frame through the step

    def frame(self, item) -> None:  # a step.AnalysedFrame
        self.rendered = self.render(item.image, item.result, fresh=True)
        item.annotated = self.rendered.image

    def render(self, image, result: FrameResult | None, *, fresh: bool) -> Rendered:
        return self.renderer.render(image, result, self.class_names, self.options, fresh=fresh)

    def close(self) -> None:
        pass


def bgra(image: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(image, cv2.COLOR_BGR2BGRA)  # (H, W, 4): QImage.Format_RGB32 in memory


def fit_to(image: np.ndarray, size: tuple[int, int] | None) -> np.ndarray:
    """``image`` scaled to fit inside ``size`` (w, h) keeping its aspect ratio (OpenCV, off the UI thread)."""
    if not size or size[0] < 2 or size[1] < 2:
        return image
    h, w = image.shape[:2]
    scale = min(size[0] / w, size[1] / h)
    tw, th = max(1, int(round(w * scale))), max(1, int(round(h * scale)))
    if (tw, th) == (w, h):
        return image
    return cv2.resize(image, (tw, th), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)


def selected_face(result: FrameResult, selected_id: int | None) -> FaceResult | None:
    """The face ``boxes.selected_or_largest`` picks (None without faces)."""
    faces = list(result.faces or [])
    face_id = selected_or_largest([(f.face_id, f.box) for f in faces], selected_id)
    return next((f for f in faces if f.face_id == face_id), None)

"""Face tracks: stable IDs across frames and per-track smoothing of the probabilities.

Matching predicts each track's box one frame ahead (constant velocity), then pairs
predictions with detections by a cost of 1 - IoU plus the centre distance in face sizes,
cheapest pair first. The prediction is what keeps two crossing faces apart: at the moment
their boxes overlap, each detection is still closest to the track moving towards it.
IDs count up from 1 and are never reused within one Tracker; a track that is not seen for
more than ``max_missed`` frames ends. After a seek in the same source (``jump``), each face of the
next frame takes the ID of the nearest known track, however far it moved: replaying a video gives
its people the IDs they had (a new source starts new tracks: ``reset``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from dan_core.pipeline.boxes import Box, iou


@dataclass
class Track:
    id: int
    box: np.ndarray  # (4,) float x, y, w, h of the last detection
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(2))  # centre motion, pixels per frame
    missed: int = 0
    hits: int = 1
    probs: np.ndarray | None = None  # smoothed probabilities

    def predicted(self) -> np.ndarray:
        p = self.box.copy()
        p[:2] += self.velocity * (self.missed + 1)
        return p


class Tracker:
    def __init__(self, *, max_missed: int = 10, max_cost: float = 1.6) -> None:
        self.max_missed = int(max_missed)
        self.max_cost = max_cost  # 1 - IoU (<= 1) + centre distance in face sizes
        self.tracks: list[Track] = []
        self._next_id = 1
        self._jumped = False

    def reset(self) -> None:
        """Forget all tracks; IDs keep counting so none is ever reused."""
        self.tracks.clear()

    def jump(self) -> None:
        """The next frame follows a seek in the same source: its faces are matched to the known tracks without
        motion or distance limit (nearest first), and no smoothing carries over the jump."""
        self._jumped = True
        for t in self.tracks:
            t.velocity, t.missed, t.hits, t.probs = np.zeros(2), 0, 1, None

    @staticmethod
    def cost(pred: np.ndarray, det: np.ndarray) -> float:
        size = max(np.sqrt(pred[2] * pred[3]), 1.0)
        dc = (det[:2] + det[2:] / 2) - (pred[:2] + pred[2:] / 2)
        return (1.0 - iou(pred, det)) + float(np.hypot(*dc)) / size

    def update(self, boxes: list[Box] | list[np.ndarray]) -> list[int]:
        """Match this frame's boxes to tracks; returns one track ID per box (in order)."""
        dets = [np.asarray(b, np.float64) for b in boxes]
        preds = [t.predicted() for t in self.tracks]
        jumped, self._jumped = self._jumped, False
        limit = np.inf if jumped else self.max_cost
        pairs = sorted((self.cost(p, d), ti, di) for ti, p in enumerate(preds) for di, d in enumerate(dets))
        ids: list[int | None] = [None] * len(dets)
        used_t: set[int] = set()
        for c, ti, di in pairs:
            if c > limit or ti in used_t or ids[di] is not None:
                continue
            t = self.tracks[ti]
            old_c = t.box[:2] + t.box[2:] / 2
            new_c = dets[di][:2] + dets[di][2:] / 2
            step = (new_c - old_c) / (t.missed + 1)
            t.velocity = 0.5 * t.velocity + 0.5 * step if t.hits > 1 else step
            t.box, t.missed, t.hits = dets[di], 0, t.hits + 1
            if jumped:  # the move across a seek is no motion
                t.velocity, t.hits = np.zeros(2), 1
            used_t.add(ti)
            ids[di] = t.id
        for ti, t in enumerate(self.tracks):
            if ti not in used_t:
                t.missed += 1
        self.tracks = [t for t in self.tracks if t.missed <= self.max_missed]
        for di, d in enumerate(dets):
            if ids[di] is None:
                t = Track(self._next_id, d)
                self._next_id += 1
                self.tracks.append(t)
                ids[di] = t.id
        return [int(i) for i in ids]  # type: ignore[arg-type]

    def track(self, track_id: int) -> Track | None:
        return next((t for t in self.tracks if t.id == track_id), None)

    def smooth(self, track_id: int, probs: np.ndarray, factor: float) -> np.ndarray:
        """Exponential moving average of a track's probabilities: p = f * p_prev + (1 - f) * p_new."""
        t = self.track(track_id)
        if factor <= 0.0 or t is None:
            if t is not None:
                t.probs = probs
            return probs
        if t.probs is None or t.probs.shape != probs.shape:
            t.probs = probs.astype(np.float32)
        else:
            t.probs = (factor * t.probs + (1.0 - factor) * probs).astype(np.float32)
        return t.probs

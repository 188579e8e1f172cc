"""The per-frame pipeline: landmarks -> alignment -> one batched DAN call -> tracking, smoothing.

``Pipeline.process`` runs one frame start to end. It is also two halves, so that callers can
overlap them: ``detect`` (landmarks + alignment, MediaPipe's work) and ``classify`` (the DAN
batch, tracking and smoothing, ONNX Runtime's work). ``Pipeline.stream`` runs ``detect`` for the
next frame in a thread while the current frame is classified: both runtimes release the GIL.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from dan_core.cli_fields import option
from dan_core.errors import DanFerError, first_line
from dan_core.paths import default_model_path
from dan_core.pipeline.align import Aligner, source_size_for, template_for, to_model_input
from dan_core.pipeline.backends import BACKENDS, make_backend, model_info
from dan_core.pipeline.frames import as_bgr
from dan_core.pipeline.landmarks import FaceLandmarks, five_points, resolve_landmarker
from dan_core.pipeline.measures import HeadPose, head_pose, quality, valence
from dan_core.pipeline.precision import PRECISIONS, choose_model
from dan_core.pipeline.tracking import Tracker

PIPELINE = "pipeline"  # the options' group in --help


@dataclass
class PipelineConfig:
    """How the pipeline is built. The fields with help are the commands' pipeline options (``options``)."""

    model: str | None = option(None, "DAN model (.onnx, or .pt with --backend torch); else $DAN_FER_MODEL or the one in "
                               "models/", group=PIPELINE)
    landmarker: str | None = option(None, "MediaPipe face_landmarker.task; else $DAN_FER_LANDMARKER, the copy in models/, "
                                    "the per-user cache, or a verified download", group=PIPELINE)
    backend: str = option("auto", "inference backend; auto: CUDA if really usable, else the CPU", group=PIPELINE,
                          choices=BACKENDS)
    precision: str = option("auto", "fp32: the float model; int8: its int8 twin beside it (<name>_int8.onnx); auto: int8 "
                            "where that twin exists and the CPU has VNNI, else fp32", group=PIPELINE, choices=PRECISIONS)
    max_faces: int = option(4, "most faces per frame", group=PIPELINE, bounds=(1, None))
    # one default for every front end (the app's live view and recording, analyze, batch): each frame's own
    # probabilities; smoothing is a choice the sidecar records, and an analysis can make it afterwards from the CSV
    smoothing: float = option(0.0, "EMA factor per face in [0, 1); 0 (the default) = off", group=PIPELINE, bounds=(0, 1),
                              high_open=True)
    max_missed: int = option(10, "frames a face may be unseen before its ID ends", group=PIPELINE, bounds=(0, None))
    mode: str = "video"  # "video" (strictly increasing timestamps) or "image" (independent stills): from the source
    threads: int = option(0, "ONNX Runtime threads; 0 (the default) = one per core", group=PIPELINE, bounds=(0, None))
    min_face_confidence: float = option(0.5, "MediaPipe's face detection, presence and tracking confidence; lower finds "
                                        "more faces (and more false ones); on stills also the threshold of the second "
                                        "look at faces the first pass missed", group=PIPELINE, bounds=(0, 1))
    blendshapes: bool = option(False, "also record MediaPipe's 52 blendshape coefficients per face (facial movements, "
                               "0..1; not FACS action units)", group=PIPELINE)


@dataclass
class FaceResult:
    face_id: int
    box: tuple[int, int, int, int]  # x, y, w, h in frame pixels
    landmarks: np.ndarray  # (478, 2) float32 frame pixels
    probs: np.ndarray  # (C,) float32 (smoothed when smoothing is on)
    dominant: str
    confidence: float
    attention: np.ndarray  # (K, h, w) float32 raw per-head maps
    matrix: np.ndarray  # (2, 3) float32 frame -> aligned crop
    crop: np.ndarray  # (S, S, 3) uint8 BGR aligned face as fed to the model
    pose: HeadPose | None = None  # yaw, pitch, roll in degrees (measures.head_pose)
    blendshapes: np.ndarray | None = None  # (52,) float32 MediaPipe's coefficients, with PipelineConfig.blendshapes
    valence: float = float("nan")  # FaceReader's valence of ``probs`` (measures.valence); NaN: the model has no happiness
    quality: str = "ok"  # measures.quality: ok, or small / pose / edge joined by +


@dataclass
class FrameResult:
    index: int
    time_s: float
    frame_size: tuple[int, int]  # (w, h)
    faces: list[FaceResult]
    timings: dict[str, float] = field(default_factory=dict)  # ms per stage


@dataclass
class Detections:
    """The first half of a frame's work: what ``detect`` hands to ``classify``."""

    index: int
    time_s: float
    frame_size: tuple[int, int]
    landmarks: list[np.ndarray]
    boxes: list[tuple[int, int, int, int]]
    matrices: list[np.ndarray]
    crops: list[np.ndarray]
    timings: dict[str, float]
    poses: list[HeadPose | None] = field(default_factory=list)  # one per face
    blendshapes: list[np.ndarray | None] = field(default_factory=list)


class LandmarkerClock:
    """Media time -> the strictly increasing timestamps MediaPipe's VIDEO mode needs.

    While media time moves forward the two are equal. After a jump back (a seek, a replay) the
    clock goes on from its last value by ``nominal_step_s``, so callers hand in the frame's real
    time and index, and the pipeline's results carry them unchanged.
    """

    def __init__(self, nominal_step_s: float = 0.04, min_step_s: float = 1e-3) -> None:
        self.nominal_step_s = nominal_step_s
        self.min_step_s = min_step_s
        self._offset = 0.0  # landmarker time - media time; changes only at a jump back
        self._last_media: float | None = None
        self._last = 0.0

    def __call__(self, media_time_s: float) -> float:
        media_time_s = float(media_time_s)
        now = media_time_s + self._offset
        if self._last_media is not None and now - self._last < self.min_step_s:  # a jump back, a repeat, a tiny step
            step = media_time_s - self._last_media
            now = self._last + max(step if step > 0 else self.nominal_step_s, self.min_step_s)
            self._offset = now - media_time_s
        self._last_media, self._last = media_time_s, now
        return now


def _ms(t0: float) -> float:
    return (time.perf_counter() - t0) * 1000.0


_DONE = object()  # the end of Pipeline.stream's frames


def _read_next(it: Iterator) -> tuple[object, float, float] | None:
    """(next item of ``it``, when reading began, how long it took in ms), or None at the end."""
    t0 = time.perf_counter()
    try:
        frame = next(it)
    except StopIteration:
        return None
    return frame, t0, _ms(t0)


class Pipeline:
    """Context manager; ``close()`` closes the landmarker."""

    def __init__(self, config: PipelineConfig | None = None) -> None:
        self.config = config = config or PipelineConfig()
        if not 0.0 <= config.smoothing < 1.0:
            raise DanFerError(f"smoothing must be in [0, 1), got {config.smoothing}")
        if config.max_faces < 1:
            raise DanFerError(f"max_faces must be at least 1, got {config.max_faces}")
        choice = choose_model(Path(config.model) if config.model else default_model_path(), config.precision, config.backend)
        self.model_path = model_path = choice.path
        self.precision, self.precision_reason = choice.precision, choice.reason
        self._backend = make_backend(model_path, config.backend, threads=config.threads)
        self.backend: str = self._backend.name
        self.meta = self._backend.meta
        self.class_names, self.input_size, self.color, self.num_heads = model_info(self.meta)
        self.model_name: str = model_path.name
        self._check_model()
        self.template, self.template_source = template_for(self.meta, self.input_size)
        self.aligner = Aligner(self.template, self.input_size, source_size=source_size_for(self.meta))
        self.landmarker_path = resolve_landmarker(config.landmarker)
        self._landmarks = FaceLandmarks(self.landmarker_path, max_faces=config.max_faces, mode=config.mode,
                                        min_confidence=config.min_face_confidence, blendshapes=config.blendshapes)
        self.tracker = Tracker(max_missed=config.max_missed)
        self._clock = LandmarkerClock()
        self._lock = threading.Lock()
        self._count = 0

    def _check_model(self) -> None:
        """One warm-up batch: the first real frame is not slow, and a model that does not match its
        own metadata fails here with one line instead of in the middle of a run."""
        blank = np.zeros((1, 3, self.input_size, self.input_size), np.float32)
        try:
            probs, attention = self._backend.run(blank)
        except Exception as exc:
            raise DanFerError(f"{self.model_name} does not run on a {self.input_size}x{self.input_size} input: "
                              f"{first_line(exc, 160)}") from exc
        if probs.shape != (1, len(self.class_names)) or attention.ndim != 4 or attention.shape[1] != self.num_heads:
            raise DanFerError(f"{self.model_name} gives probs {probs.shape} and attention {attention.shape}, but its metadata "
                              f"says {len(self.class_names)} classes and {self.num_heads} heads")

    # ------------------------------------------------------------------ the two halves
    def detect(self, frame: np.ndarray, time_s: float, *, index: int | None = None) -> Detections:
        """Landmarks and aligned crops of one frame at media time ``time_s`` (thread: MediaPipe's).

        Times may jump back (seeks): the pipeline keeps MediaPipe's own timestamps increasing.
        """
        t0 = time.perf_counter()
        bgr = as_bgr(frame)
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        timings = {"convert": _ms(t0)}
        t0 = time.perf_counter()
        faces = self._landmarks.detect(rgb, self._clock(time_s))
        timings["landmarks"] = _ms(t0)
        t0 = time.perf_counter()
        matrices, crops = [], []
        for f in faces:
            m, crop = self.aligner(bgr, five_points(f.landmarks))
            matrices.append(m)
            crops.append(crop)
        timings["align"] = _ms(t0)
        if index is None:
            index = self._count
        self._count = index + 1
        h, w = bgr.shape[:2]
        return Detections(index, float(time_s), (w, h), [f.landmarks for f in faces], [f.box for f in faces],
                          matrices, crops, timings, [head_pose(f.matrix) for f in faces], [f.blendshapes for f in faces])

    def classify(self, det: Detections) -> FrameResult:
        """One DAN batch for all faces of a frame, then tracking and smoothing (thread: the caller's)."""
        timings = dict(det.timings)
        faces: list[FaceResult] = []
        t0 = time.perf_counter()
        if det.crops:
            probs, attention = self._backend.run(to_model_input(det.crops, self.color))
        timings["infer"] = _ms(t0)
        t0 = time.perf_counter()
        ids = self.tracker.update(det.boxes)
        for i, face_id in enumerate(ids):
            p = self.tracker.smooth(face_id, probs[i], self.config.smoothing)
            k = int(np.argmax(p))
            box = tuple(int(v) for v in det.boxes[i])
            pose = det.poses[i] if i < len(det.poses) else None
            faces.append(FaceResult(face_id, box, det.landmarks[i], p, self.class_names[k], float(p[k]),  # type: ignore[arg-type]
                                    attention[i], det.matrices[i], det.crops[i], pose,
                                    det.blendshapes[i] if i < len(det.blendshapes) else None, valence(p, self.class_names),
                                    quality(box, det.landmarks[i], det.frame_size, pose)))
        timings["track"] = _ms(t0)
        return FrameResult(det.index, det.time_s, det.frame_size, faces, timings)

    # ------------------------------------------------------------------ whole frames
    def process(self, frame_bgr: np.ndarray, time_s: float, *, index: int | None = None) -> FrameResult:
        """One frame start to end. Safe to call from one thread at a time."""
        with self._lock:
            t0 = time.perf_counter()
            result = self.classify(self.detect(frame_bgr, time_s, index=index))
            result.timings["total"] = _ms(t0)
            return result

    def stream(self, frames: Iterable, *, overlap: bool = True, depth: int = 1,
               independent: bool = False) -> Iterator[tuple[object, FrameResult]]:
        """(frame, result) for each item of ``frames`` (objects with image_bgr, index, time_s, e.g. sources.Frame).

        With ``overlap`` the decoding and landmarks of the next frames run in a worker thread
        while the current frame is classified. Results come out in order. ``timings`` gains
        ``decode`` (reading the frame), ``total`` (wall time between consecutive results) and
        ``latency`` (from reading the frame to its result). ``independent`` frames (unrelated
        photos) start new tracks each, so faces are never linked across them.
        """
        if overlap:
            yield from self._stream_overlapped(frames, depth=depth, independent=independent)
        else:
            yield from self._stream_serial(frames, independent=independent)

    def _stream_serial(self, frames: Iterable, *, independent: bool) -> Iterator[tuple[object, FrameResult]]:
        it = iter(frames)
        while (read := _read_next(it)) is not None:
            frame, t0, decode = read
            with self._lock:
                if independent:
                    self.tracker.reset()
                result = self.classify(self.detect(frame.image_bgr, frame.time_s, index=frame.index))
            result.timings["decode"] = decode
            result.timings["total"] = result.timings["latency"] = _ms(t0)
            yield frame, result

    def _stream_overlapped(self, frames: Iterable, *, depth: int, independent: bool) -> Iterator[tuple[object, FrameResult]]:
        # ``depth`` frames may be detected ahead of the one being classified: 1 keeps both stages busy
        # while a frame waits for nothing but its own two stages (low latency as well as throughput)
        q: queue.SimpleQueue = queue.SimpleQueue()
        ahead = threading.Semaphore(depth)
        stop = threading.Event()
        thread = threading.Thread(target=self._detect_ahead, args=(frames, q, ahead, stop), name="dan-fer-detect",
                                  daemon=True)
        with self._lock:
            thread.start()
            try:
                last = time.perf_counter()
                while (item := q.get()) is not _DONE:
                    ahead.release()
                    if isinstance(item, BaseException):
                        raise item
                    frame, det, started = item
                    if independent:
                        self.tracker.reset()
                    result = self.classify(det)
                    now = time.perf_counter()
                    result.timings["total"] = (now - last) * 1000.0
                    result.timings["latency"] = (now - started) * 1000.0
                    last = now
                    yield frame, result
            finally:
                stop.set()
                thread.join(timeout=5)

    def _detect_ahead(self, frames: Iterable, q: queue.SimpleQueue, ahead: threading.Semaphore, stop: threading.Event) -> None:
        """The worker of ``_stream_overlapped``: read and detect frames, at most ``depth`` ahead, into ``q``;
        then ``_DONE``, or the exception that stopped it (raised in the consuming thread, never lost)."""
        try:
            it = iter(frames)
            while not stop.is_set():
                while not ahead.acquire(timeout=0.1):
                    if stop.is_set():
                        return
                read = _read_next(it)
                if read is None:
                    break
                frame, t0, decode = read
                det = self.detect(frame.image_bgr, frame.time_s, index=frame.index)
                det.timings["decode"] = decode
                q.put((frame, det, t0))
            q.put(_DONE)
        except BaseException as exc:
            q.put(exc)

    def reset(self) -> None:
        """Start new tracks (a new source); IDs are still never reused."""
        self.tracker.reset()

    def jump(self) -> None:
        """The next frame follows a seek in the same source: its faces keep the IDs of the nearest tracks."""
        self.tracker.jump()

    def close(self) -> None:
        self._landmarks.close()

    def __enter__(self) -> Pipeline:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def describe(self) -> dict[str, object]:
        return {
            "model": str(self.model_path), "model_name": self.model_name, "backend": self.backend,
            "precision": self.precision, "precision_reason": self.precision_reason,
            "class_names": list(self.class_names), "input_size": self.input_size, "color": self.color,
            "num_heads": self.num_heads, "template_source": self.template_source,
            "landmarker": str(self.landmarker_path), "train_dataset": self.meta.get("train_dataset", ""),
        }

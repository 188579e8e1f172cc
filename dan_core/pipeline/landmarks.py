"""Face landmarks: find the MediaPipe ``face_landmarker.task`` file and run the FaceLandmarker.

Where the model file comes from, first match wins:

1. an explicit path (``--landmarker PATH`` / ``PipelineConfig.landmarker``),
2. the environment variable ``DAN_FER_LANDMARKER``,
3. the copy shipped in ``models/`` (Apache-2.0, sha256-checked), so a first start works offline,
4. the per-user cache (``$XDG_CACHE_HOME/dan-fer`` or ``~/.cache/dan-fer``; ``%LOCALAPPDATA%\\dan-fer`` on Windows),
5. a download from the official address into that cache, verified by sha256.

Offline with no file gives one DanFerError naming the places the file may go. Steps 3 to 5 say
in one log line what they did when it is not the plain case (a damaged copy passed over, a
download started).
"""

from __future__ import annotations

import hashlib
import logging
import os
import sys
import tempfile
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dan_core.errors import DanFerError
from dan_core.paths import MODELS_DIR
from dan_core.pipeline.boxes import iou

LANDMARKER_URL = "https://storage.googleapis.com/mediapipe-models/face_landmarker/face_landmarker/float16/1/face_landmarker.task"
LANDMARKER_SHA256 = "64184e229b263107bc2b804c6625db1341ff2bb731874b0bcc2fe6544e0bc9ff"
LANDMARKER_BYTES = 3_758_596
LANDMARKER_FILE = "face_landmarker.task"
ENV_VAR = "DAN_FER_LANDMARKER"
NO_DOWNLOAD_ENV = "DAN_FER_NO_DOWNLOAD"  # set to 1 to never touch the network (tests, air-gapped machines)
SHIPPED_LANDMARKER = MODELS_DIR / LANDMARKER_FILE  # in the repository, with its licence (models/README.md)
DOWNLOAD_TIMEOUT_S = 10.0  # per connect/read: a stalled network is reported after this long, not after minutes

log = logging.getLogger(__name__)

# 478-point mesh indices of the five alignment points, in image order for a frontal face:
# eye on the image left (subject's right), eye on the image right, nose tip, mouth corner image-left, image-right.
# An eye centre is the mean of its two corners, which does not move with the gaze as the iris does.
EYE_LEFT = (33, 133)
EYE_RIGHT = (362, 263)
NOSE_TIP = 1
MOUTH_LEFT = 61
MOUTH_RIGHT = 291
POINT_NAMES = ("eye_left", "eye_right", "nose_tip", "mouth_left", "mouth_right")


def five_points(landmarks: np.ndarray) -> np.ndarray:
    """(478, 2) mesh -> (5, 2) alignment points (eye centres, nose tip, mouth corners)."""
    lm = np.asarray(landmarks, np.float32)
    return np.stack([
        lm[list(EYE_LEFT)].mean(axis=0),
        lm[list(EYE_RIGHT)].mean(axis=0),
        lm[NOSE_TIP],
        lm[MOUTH_LEFT],
        lm[MOUTH_RIGHT],
    ])  # (5, 2)


# ----------------------------------------------------------------------------- locating the file
def cache_dir() -> Path:
    if sys.platform == "win32" and os.environ.get("LOCALAPPDATA"):
        return Path(os.environ["LOCALAPPDATA"]) / "dan-fer"
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "dan-fer"


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _where_to_put_it(cached: Path) -> str:
    return (f"download {LANDMARKER_URL} (sha256 {LANDMARKER_SHA256[:12]}...) and put it at {cached}, "
            f"or pass --landmarker PATH, or set {ENV_VAR}")


def download_landmarker(dest: Path, url: str | None = None, sha256: str | None = None) -> Path:
    """Download (default: the official address) to a temporary file beside ``dest``, check sha256, move into place."""
    from tqdm import tqdm

    url = url or LANDMARKER_URL
    sha256 = sha256 or LANDMARKER_SHA256
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DanFerError(f"cannot create the cache folder {dest.parent}: {exc.strerror or exc}") from exc
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=".download-", dir=dest.parent)
    except OSError as exc:
        raise DanFerError(f"cannot write to the cache folder {dest.parent}: {exc.strerror or exc}") from exc
    tmp = Path(tmp_name)
    h = hashlib.sha256()
    host = urllib.parse.urlsplit(url).netloc or url
    log.warning("downloading %s (%.1f MB) from %s into %s", LANDMARKER_FILE, LANDMARKER_BYTES / 1e6, host, dest.parent)
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as resp:
            total = int(resp.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc=f"downloading {LANDMARKER_FILE}", leave=False) as bar:
                for block in iter(lambda: resp.read(1 << 16), b""):
                    out.write(block)
                    h.update(block)
                    bar.update(len(block))
        if h.hexdigest() != sha256:
            raise DanFerError(f"downloaded {LANDMARKER_FILE} has sha256 {h.hexdigest()[:12]}..., expected {sha256[:12]}...; "
                              f"{_where_to_put_it(dest)}")
        os.replace(tmp, dest)
    except DanFerError:
        raise
    except OSError as exc:  # URLError is an OSError: offline, DNS, refused, timeout
        reason = getattr(exc, "reason", None) or exc.strerror or exc
        if isinstance(exc, TimeoutError) or isinstance(reason, TimeoutError):
            reason = f"no answer from {host} for {DOWNLOAD_TIMEOUT_S:g} s: the network is stalled or offline"
        raise DanFerError(f"cannot download the face landmarker model ({reason}); {_where_to_put_it(dest)}") from exc
    finally:
        tmp.unlink(missing_ok=True)
    return dest


def resolve_landmarker(path: str | os.PathLike | None = None, *, download: bool | None = None) -> Path:
    """The face_landmarker.task to use (see the module docstring for the order)."""
    if path:
        p = Path(path)
        if not p.is_file():
            raise DanFerError(f"face landmarker model not found: {p}")
        return p
    env = os.environ.get(ENV_VAR)
    if env:
        p = Path(env)
        if not p.is_file():
            raise DanFerError(f"{ENV_VAR} points to a missing file: {p}")
        return p
    shipped = SHIPPED_LANDMARKER
    if shipped.is_file():
        if sha256_of(shipped) == LANDMARKER_SHA256:
            return shipped
        log.warning("the shipped %s is damaged (sha256 mismatch; `git checkout -- models/%s` restores it); "
                    "looking in the user cache instead", shipped, shipped.name)
    cached = cache_dir() / LANDMARKER_FILE
    if cached.is_file():
        if sha256_of(cached) == LANDMARKER_SHA256:
            return cached
        bad = cached.with_suffix(".corrupt")
        os.replace(cached, bad)  # keep it for inspection; fetch a good copy below
        reason = f"the cached {cached} was corrupt (sha256 mismatch, moved to {bad.name})"
    else:
        reason = f"no {LANDMARKER_FILE} found"
    if download is None:
        download = os.environ.get(NO_DOWNLOAD_ENV, "") in ("", "0")
    if not download:
        raise DanFerError(f"{reason}; {_where_to_put_it(cached)}")
    if reason.startswith("the cached"):
        log.warning("%s; fetching a fresh copy", reason)
    return download_landmarker(cached)


# ----------------------------------------------------------------------------- running it
_NATIVE_LOG_PREFIXES = ("W0000", "I0000", "E0000", "INFO: Created TensorFlow Lite", "WARNING: Logging before InitGoogle")


@contextmanager
def captured_stderr() -> Iterator[list[str]]:
    """Capture what native code writes to file descriptor 2 (MediaPipe's start-up log lines).

    MediaPipe's own log lines are dropped; anything else (another thread's output) is written
    back afterwards. All lines are handed back in the yielded list; DAN_FER_DEBUG=1 lets them through.
    """
    out: list[str] = []
    if os.environ.get("DAN_FER_DEBUG"):
        yield out
        return
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no real fd 2 (some GUI launchers)
        yield out
        return
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield out
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            out.extend(tmp.read().decode("utf-8", "replace").splitlines())
            others = [line for line in out if not line.startswith(_NATIVE_LOG_PREFIXES)]
            if others:
                sys.stderr.write("\n".join(others) + "\n")


@dataclass
class DetectedFace:
    landmarks: np.ndarray  # (478, 2) float32 frame pixels
    box: tuple[int, int, int, int]  # x, y, w, h of the landmarks, clipped to the frame
    matrix: np.ndarray | None = None  # (4, 4) float32 facial transformation matrix: the head pose (measures.head_pose)
    blendshapes: np.ndarray | None = None  # (52,) float32 in measures.BLENDSHAPE_NAMES order, when asked for


def landmarks_box(landmarks: np.ndarray, width: int, height: int) -> tuple[int, int, int, int]:
    x0, y0 = np.floor(landmarks.min(axis=0)).astype(int)
    x1, y1 = np.ceil(landmarks.max(axis=0)).astype(int)
    x0, y0 = max(int(x0), 0), max(int(y0), 0)
    x1, y1 = min(int(x1), width), min(int(y1), height)
    return x0, y0, max(x1 - x0, 0), max(y1 - y0, 0)


class FaceLandmarks:
    """MediaPipe FaceLandmarker in VIDEO mode (strictly increasing timestamps) or IMAGE mode.

    MediaPipe's detector (BlazeFace short range) looks at a 128 x 128 copy of the whole frame, so
    in a large still a face of 10% of the width is easily missed. In IMAGE mode, stills of at least
    ``tile_min_side`` pixels are therefore also searched in 2 x 2 overlapping tiles (each 70% of
    the frame), and detections of the same face are merged (IoU > 0.3, the whole-frame one wins).

    Then, for stills, ``second_look.SecondLook`` looks again around the faces the bundle's own detector
    sees (at ``min_confidence``) where none was found. Every face comes with MediaPipe's facial
    transformation matrix (the head pose; its cost is a few matrix products) and, with ``blendshapes``,
    its 52 blendshape coefficients (a second small network).
    """

    def __init__(self, model_path: str | os.PathLike, *, max_faces: int = 4, mode: str = "video",
                 min_confidence: float = 0.5, tile_min_side: int = 800, blendshapes: bool = False) -> None:
        if mode not in ("video", "image"):
            raise DanFerError(f"unknown landmarker mode {mode!r} (use video or image)")
        import mediapipe as mp
        from mediapipe.tasks.python import vision
        from mediapipe.tasks.python.core.base_options import BaseOptions

        self._mp = mp
        self.mode = mode
        self.model_path = Path(model_path)
        running = vision.RunningMode.VIDEO if mode == "video" else vision.RunningMode.IMAGE
        try:
            data = self.model_path.read_bytes()
        except OSError as exc:
            raise DanFerError(f"cannot read face landmarker model {self.model_path}: {exc.strerror or exc}") from exc
        options = vision.FaceLandmarkerOptions(
            base_options=BaseOptions(model_asset_buffer=data), running_mode=running, num_faces=max(1, int(max_faces)),
            min_face_detection_confidence=min_confidence, min_face_presence_confidence=min_confidence,
            min_tracking_confidence=min_confidence, output_facial_transformation_matrixes=True,
            output_face_blendshapes=bool(blendshapes),
        )
        try:
            with captured_stderr():
                self._landmarker = vision.FaceLandmarker.create_from_options(options)
        except Exception as exc:  # a corrupt or wrong bundle: MediaPipe raises RuntimeError/ValueError with pages of text
            digest = sha256_of(self.model_path)
            official = LANDMARKER_SHA256[:12]
            note = "" if digest == LANDMARKER_SHA256 else f" (sha256 {digest[:12]}... is not the official {official}...)"
            raise DanFerError(f"{self.model_path} is not a usable face landmarker model{note}") from exc
        self._last_ms = -1
        self.max_faces = max(1, int(max_faces))
        self.tile_min_side = tile_min_side
        self._second = None
        if mode == "image":
            from dan_core.pipeline.second_look import SecondLook

            self._second = SecondLook(data, min_confidence)

    def detect(self, rgb: np.ndarray, time_s: float) -> list[DetectedFace]:
        """Faces in one RGB uint8 frame (H, W, 3), in frame pixels."""
        faces = self._detect(rgb, time_s)
        if self.mode != "image" or len(faces) >= self.max_faces:
            return faces
        h, w = rgb.shape[:2]
        large = bool(self.tile_min_side) and max(h, w) >= self.tile_min_side
        if large:
            faces = self._tiles(rgb, faces, time_s)
        if self._second is not None and len(faces) < self.max_faces:
            faces += self._second.look(rgb, [f.box for f in faces], lambda crop: self._detect(crop, time_s), tiles=large,
                                       room=self.max_faces - len(faces))
        return faces

    def _tiles(self, rgb: np.ndarray, faces: list[DetectedFace], time_s: float) -> list[DetectedFace]:
        """``faces`` and those found in 2 x 2 overlapping tiles of the still (each 70% of it), merged."""
        h, w = rgb.shape[:2]
        th, tw = int(h * 0.7), int(w * 0.7)
        for y0 in (0, h - th):
            for x0 in (0, w - tw):
                for f in self._detect(np.ascontiguousarray(rgb[y0:y0 + th, x0:x0 + tw]), time_s):
                    pts = f.landmarks + np.array([x0, y0], np.float32)
                    box = landmarks_box(pts, w, h)
                    if len(faces) < self.max_faces and all(iou(box, g.box) <= 0.3 for g in faces):
                        faces.append(DetectedFace(pts, box, f.matrix, f.blendshapes))
        return faces

    def _detect(self, rgb: np.ndarray, time_s: float) -> list[DetectedFace]:
        h, w = rgb.shape[:2]
        image = self._mp.Image(image_format=self._mp.ImageFormat.SRGB, data=np.ascontiguousarray(rgb))
        if self.mode == "video":
            ms = max(int(round(time_s * 1000.0)), self._last_ms + 1)  # MediaPipe needs strictly increasing ms
            self._last_ms = ms
            result = self._landmarker.detect_for_video(image, ms)
        else:
            result = self._landmarker.detect(image)
        faces = []
        matrices = result.facial_transformation_matrixes or []
        shapes = result.face_blendshapes or []
        for i, face in enumerate(result.face_landmarks):
            pts = np.array([(p.x * w, p.y * h) for p in face], np.float32)  # (478, 2) pixels
            matrix = np.asarray(matrices[i], np.float32) if i < len(matrices) else None  # (4, 4)
            coefficients = np.array([c.score for c in shapes[i]], np.float32) if i < len(shapes) else None  # (52,)
            faces.append(DetectedFace(pts, landmarks_box(pts, w, h), matrix, coefficients))
        return faces

    def close(self) -> None:
        if self._landmarker is not None:
            self._landmarker.close()
            self._landmarker = None
        if self._second is not None:
            self._second.close()
            self._second = None

    def __enter__(self) -> FaceLandmarks:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

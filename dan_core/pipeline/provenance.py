"""What a recording's sidecar says about how its numbers were made: one function for every front end.

``run_record`` is the sidecar's opening part, written the same way by ``dan-fer analyze``, ``batch``
and the app's recording: dan-fer's version (``TimelineWriter`` adds it with the start time), the model
and landmarker files with their sha256, every option that changes the numbers (``options``: the
pipeline's configuration and ``every``), and the source (its name, frame rate, frame count, whether it
is live; its frame size once the first frame is seen). Two CSVs whose ``options`` and hashes agree
were made the same way; ``tests/test_study_record.py`` checks that the app's and analyze's then agree.
"""

from __future__ import annotations

import dataclasses
import os
import threading
from pathlib import Path

from dan_core.pipeline.landmarks import sha256_of

_HASHES: dict[tuple, str] = {}  # (path, size, mtime_ns, inode) -> sha256, per process
_LOCK = threading.Lock()
NOT_NUMBERS = ("model", "landmarker")  # recorded with their sha256 instead: a path is not what made the numbers


def file_sha256(path: str | os.PathLike) -> str:
    """The file's sha256, hashed again only when its size, modification time or inode change."""
    path = Path(path)
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns, st.st_ino)
    with _LOCK:
        known = _HASHES.get(key)
    if known is None:
        known = sha256_of(path)
        with _LOCK:
            _HASHES[key] = known
    return known


def number_options(config, *, every: int = 1) -> dict:
    """Every option of ``config`` (a ``PipelineConfig``) that changes the numbers, plus ``every``."""
    values = {k: v for k, v in dataclasses.asdict(config).items() if k not in NOT_NUMBERS}
    return {**values, "every": int(every)}


def run_record(pipeline, *, source: str | None, source_fps: float | None, source_frames: int | None, live: bool,
               every: int = 1, fps: float | None = None, made_by: str) -> dict:
    """The sidecar's opening part for a run of ``pipeline`` on a source (see the module docstring); ``fps``: the
    timeline's own rate (default: the source's over ``every``)."""
    if fps is None:
        fps = source_fps / every if source_fps else source_fps
    return {
        "recorded_by": made_by,
        "source": source, "source_fps": source_fps, "source_frames": source_frames, "live": bool(live),
        "fps": fps, "every": int(every),
        **pipeline.describe(),
        "model_sha256": file_sha256(pipeline.model_path),
        "landmarker_sha256": file_sha256(pipeline.landmarker_path),
        "options": number_options(pipeline.config, every=every),
    }

"""One video as a Dask task: the worker side of ``dan-fer batch --scheduler/--cluster`` (``batch_dask`` is the client).

**A worker keeps its pipeline.** ``run_video`` analyses through ``batch.analyze_video``, which keeps one landmarker
and one ONNX Runtime session per process for all the videos the process gets. The tasks of one worker process run
one at a time (a lock), so even a worker started with several threads holds one pipeline.

**Same files everywhere.** The client records the model and the landmarker it would use (``record_files``: path
and sha256). Before each video the task resolves the files this worker reads (the path the user gave, or this
worker's own default) and compares their sha256 (hashed once per file while its size and modification time stay):
a worker with another file raises ``StaleFileError``, which names the file, the worker and both hashes, and the
client stops the batch instead of mixing two models in one study. A pipeline built from other files is dropped.

**Nothing torn, nothing doubled.** Each attempt writes its own ``.<name>.csv.<attempt>.part`` (+ sidecar) in the
output folder. Once the CSV is finished, ``commit`` renames the pair into place under a lock on
``.dan-fer-batch.lock``: the final sidecar is removed first, then the CSV takes the final name, then its sidecar;
a reader sees the old pair, an incomplete one (redone by a rerun), or the whole new one, never half a file. Two
attempts of one video (Dask runs a task again when it takes a worker for lost) never write into one file, and the
lock keeps one attempt's CSV from ending up beside the other's sidecar. ``remove_attempts`` clears what a killed
attempt left (the client calls it when the batch ends).

Nothing here opens a connection: a task runs inside a worker that has already joined its scheduler (on 127.0.0.1
for ``--cluster local:N`` and in the tests); it only reports frames done through that worker (``log_event``).
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from glob import escape
from pathlib import Path

from dan_core.errors import DanFerError

try:
    import fcntl
except ImportError:  # Windows: the lock between threads of one process only
    fcntl = None  # type: ignore[assignment]

LOCK_NAME = ".dan-fer-batch.lock"  # in the output folder; held only while a finished attempt is renamed into place
PROGRESS_EVERY_S = 0.5  # how often a worker reports frames done (one small event to the scheduler)


class StaleFileError(DanFerError):
    """A worker reads another model or landmarker than the client recorded (or cannot read it): the batch stops."""


@dataclass(frozen=True)
class FileRecord:
    """A file every worker must read as the client has it: the model or the landmarker."""

    role: str  # "model" or "landmarker" (the option is --ROLE)
    given: str | None  # the path the user gave, made absolute; None: each worker uses its own default
    path: str  # where the client found it
    sha256: str


# --------------------------------------------------------------------------------------- the files


def sha256_cached(path: Path) -> str:
    """The file's sha256, hashed again only when its size, modification time or inode change (the sidecars' own)."""
    from dan_core.pipeline.provenance import file_sha256

    return file_sha256(path)


def _resolve(role: str, given: str | None) -> Path:
    """The file this process would read for ``role``: the given path, or its own default."""
    from dan_core.paths import default_model_path
    from dan_core.pipeline.landmarks import resolve_landmarker

    if role == "landmarker":
        return resolve_landmarker(given).resolve()
    path = Path(given) if given else default_model_path()
    if not path.is_file():
        raise DanFerError(f"model not found: {path}")
    return path.resolve()


def record_files(model: str | None, landmarker: str | None) -> tuple[FileRecord, FileRecord]:
    """On the client: the model and landmarker of this batch, with their sha256 (what every worker must match)."""
    records = []
    for role, given in (("model", model), ("landmarker", landmarker)):
        given_abs = str(Path(given).resolve()) if given else None
        path = _resolve(role, given_abs)
        records.append(FileRecord(role, given_abs, str(path), sha256_cached(path)))
    return records[0], records[1]


def check_files(files: tuple[FileRecord, ...], where: str = "this worker") -> dict[str, str]:
    """{role: path} of the files this process reads, each checked against the client's sha256; StaleFileError otherwise."""
    found = {}
    for rec in files:
        try:
            path = _resolve(rec.role, rec.given)
            digest = sha256_cached(path)
        except (DanFerError, OSError) as exc:
            raise StaleFileError(f"{where} cannot read the {rec.role} the client uses ({rec.path}): {exc}") from exc
        if digest != rec.sha256:
            raise StaleFileError(f"{rec.role} {path} on {where} has sha256 {digest}, but the client's {rec.path} has "
                                 f"{rec.sha256}: every worker must read the same file (replace the worker's copy, or pass "
                                 f"--{rec.role} PATH on a file system all of them share)")
        found[rec.role] = str(path)
    return found


# ------------------------------------------------------------------------------ attempts and commit


def attempt_path(final: Path) -> Path:
    """This attempt's own CSV name beside the final one (hidden; the pid shows which process writes it)."""
    return final.with_name(f".{final.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.part")


def attempt_files(final: Path) -> list[Path]:
    """Every attempt's files (CSV, sidecar, the sidecar's own temporary) for the output ``final``."""
    return sorted(final.parent.glob(f".{escape(final.name)}.*.part*"))


_THREAD_LOCK = threading.Lock()  # lockf locks belong to the process: threads of one process queue here first


@contextmanager
def output_lock(folder: Path) -> Iterator[None]:
    """Held while attempts are renamed into place or cleared (POSIX record locks, which NFS also honours)."""
    with _THREAD_LOCK:
        if fcntl is None:
            yield
            return
        fd = os.open(folder / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock (and so does the death of the process)


def commit(part: Path, final: Path, **provenance) -> None:
    """Rename a finished attempt (``part`` + sidecar) to ``final`` (+ sidecar) as one step, under the folder's lock.

    The sidecar is told its final name and ``provenance`` (which worker, which attempt) first.
    """
    from dan_core.pipeline.timeline import sidecar_path

    part_side, final_side = sidecar_path(part), sidecar_path(final)
    meta = json.loads(part_side.read_text(encoding="utf-8"))
    meta.update(csv=final.name, **provenance)
    part_side.write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
    with output_lock(final.parent):
        if not part.is_file() or not part_side.is_file():  # cleared by a newer batch meanwhile: nothing to commit
            raise DanFerError(f"{part.name} was removed before it could be renamed to {final.name}")
        final_side.unlink(missing_ok=True)  # from here the pair is incomplete ...
        os.replace(part, final)
        os.replace(part_side, final_side)  # ... and from here complete again


def remove_attempts(finals: list[Path]) -> int:
    """Clear the files that attempts of these outputs left (killed workers, a killed client); how many went."""
    removed = 0
    if not finals:
        return 0
    with output_lock(finals[0].parent):
        for final in finals:
            for p in attempt_files(final):
                p.unlink(missing_ok=True)
                removed += 1
    return removed


# ----------------------------------------------------------------------------------------- the task


_ONE_VIDEO_AT_A_TIME = threading.Lock()  # one pipeline per worker process, whatever its thread count
_LOADED: dict[str, tuple] = {}  # the sha256 of the files this process' cached pipeline was built from


def host_cpus() -> int:
    """The cores this process may use (its CPU affinity: what a Slurm job or a cgroup allows)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _this_worker():
    """The Dask worker running this task, or None (called outside a worker, or without Dask)."""
    try:
        from distributed import get_worker

        return get_worker()
    except (ImportError, ValueError):
        return None


def _pipeline_options(options: dict, worker) -> dict:
    """ONNX Runtime threads and the landmark overlap for this worker: its host's share of the cores, as the client
    planned it (``hosts``: host -> [threads, overlap]); a host that joined later gets all its cores."""
    out = {k: v for k, v in options.items() if k != "hosts"}
    if worker is None or "hosts" not in options:
        return out
    from distributed.comm import get_address_host

    threads, overlap = options["hosts"].get(get_address_host(worker.address), (host_cpus(), True))
    return {**out, "threads": threads, "overlap": overlap}


def _progress(worker, topic: str | None) -> tuple[Callable[[int], None] | None, Callable[[], None]]:
    """(progress(n) for analyze_video, flush()): frames done, sent to the client as events at most every half second."""
    if worker is None or not topic:
        return None, lambda: None
    state = {"n": 0, "t": time.monotonic()}

    def flush() -> None:
        if state["n"]:
            worker.log_event(topic, state["n"])
            state["n"], state["t"] = 0, time.monotonic()

    def progress(n: int) -> None:
        state["n"] += n
        if time.monotonic() - state["t"] >= PROGRESS_EVERY_S:
            flush()

    return progress, flush


def run_video(video: str, csv_path: str, options: dict, files: tuple[FileRecord, ...], topic: str | None = None) -> dict:
    """The task: analyse ``video`` into ``csv_path`` (+ sidecar), whole or not at all.

    Raises StaleFileError (the batch stops) or DanFerError naming the worker (the video fails; the client may retry).
    """
    from dan_core.commands.batch import analyze_video, close_pipelines

    worker = _this_worker()
    where = f"worker {worker.address}" if worker is not None else "this process"
    paths = check_files(files, where)
    opts = {**_pipeline_options(options, worker), **paths}
    final = Path(csv_path)
    part = attempt_path(final)
    progress, flush = _progress(worker, topic)
    with _ONE_VIDEO_AT_A_TIME:
        hashes = tuple(f.sha256 for f in files)
        if _LOADED.get("hashes") != hashes:  # the files changed since this process built its pipeline
            close_pipelines()
            _LOADED["hashes"] = hashes
        try:
            result = analyze_video(video, part, opts, progress)
            flush()
            commit(part, final, worker=worker.address if worker is not None else None, attempt=part.name,
                   **{f"{f.role}_sha256": f.sha256 for f in files})
        except DanFerError as exc:
            raise DanFerError(f"{exc} ({where})") from None
        except Exception as exc:  # a decoder or the landmarker broke on this file: the video fails, the worker goes on
            raise DanFerError(f"{type(exc).__name__}: {exc} ({where})") from None
        finally:
            for p in (part, part.with_name(part.name + ".json"), part.with_name(part.name + ".json.tmp")):
                p.unlink(missing_ok=True)
    return {**result, "csv": str(final), "worker": worker.address if worker is not None else None}


def video_task(video: str, csv_path: str, options: dict, files: tuple[FileRecord, ...], topic: str | None = None) -> dict:
    """``run_video`` as the client submits it: a failure is a result (``status: error``, ``stale`` for a file that differs),
    never an exception, so the client decides about retries and workers do not log each failed video as a crash."""
    try:
        return run_video(video, csv_path, options, files, topic)
    except DanFerError as exc:
        return {"video": video, "csv": csv_path, "status": "error", "error": str(exc), "stale": isinstance(exc, StaleFileError)}

"""dan-fer batch on a Dask cluster: the client side of ``--cluster local:N`` and ``--scheduler ADDRESS``.

    dan-fer batch videos/ --out-dir results --cluster local:2                 # N worker processes here, on 127.0.0.1
    dan-fer batch videos/ --out-dir results --scheduler tcp://127.0.0.1:8786  # workers started by hand, Slurm ...

The batch is the same as with the process pool (``batch.py``): the same inputs, output names, "complete" rule,
resume and summary. What changes is who runs the videos: one Dask task per video (``batch_task.run_video``),
handed to the workers by Dask's scheduler, which runs a video again elsewhere when its worker dies. Before any task
the client records the model and landmarker (sha256) and checks that every worker reads the same files; each task
checks again. A video that fails is tried ``--retries`` more times (default 1), then it is one error row and the
others go on. ``--gpu`` sends videos only to workers started with ``--resources GPU=1``, with the CUDA backend.

Dask is imported only here, and only when one of these flags is given: without them batch needs none of it.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from dan_core.cli_fields import ranged
from dan_core.commands.batch_task import FileRecord, StaleFileError, check_files, host_cpus, record_files, remove_attempts, video_task
from dan_core.errors import DanFerError, first_line

LOCAL_HOST = "127.0.0.1"  # a local cluster listens on loopback only: scheduler, nannies, workers, dashboard
CONNECT_TIMEOUT = "10s"  # to reach a --scheduler


def cluster_size(text: str) -> int:
    """``local:N`` -> N (worker processes on this machine)."""
    kind, _, n = text.partition(":")
    if kind != "local" or not n.isdigit() or int(n) < 1:
        raise argparse.ArgumentTypeError(f"expected local:N (N worker processes on this machine, N >= 1), got {text!r}")
    return int(n)


def add_cluster_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("more than one machine (Dask: pip install 'dan-fer[cluster]')")
    where = g.add_mutually_exclusive_group()
    where.add_argument("--scheduler", metavar="ADDRESS", help="run one Dask task per video on the cluster of this scheduler: "
                       "tcp://HOST:PORT, or the file written by `dask scheduler --scheduler-file FILE`")
    where.add_argument("--cluster", type=cluster_size, metavar="local:N", help="start a Dask cluster of N worker processes on "
                       "this machine (on 127.0.0.1) for this batch")
    g.add_argument("--retries", type=ranged(int, 0), default=None, help="with --scheduler/--cluster: try a video that fails "
                   "this many more times before it is an error row (default: 1)")
    g.add_argument("--gpu", action="store_true", help="with --scheduler/--cluster: run videos only on workers started with "
                   "--resources GPU=1, with the CUDA backend")


def wants_dask(args: argparse.Namespace) -> bool:
    """Whether this batch runs on Dask; one error line for Dask-only flags without a cluster, or a pool flag with one."""
    dask = args.scheduler is not None or args.cluster is not None
    if not dask and (args.retries is not None or args.gpu):
        raise DanFerError("--retries and --gpu need --scheduler ADDRESS or --cluster local:N")
    if dask and args.workers:
        raise DanFerError("--workers sizes the process pool; with Dask the cluster decides (--cluster local:N: N workers)")
    return dask


# ------------------------------------------------------------------------------------- the cluster


@contextmanager
def connect(args: argparse.Namespace, videos: int) -> Iterator[object]:
    """A Dask client: of a LocalCluster on 127.0.0.1 (``--cluster local:N``: no more workers than ``videos``), or of
    the ``--scheduler``'s cluster."""
    try:
        from distributed import Client, LocalCluster
    except ImportError as exc:
        raise DanFerError("--scheduler and --cluster need Dask: pip install 'dan-fer[cluster]'") from exc
    if args.cluster is not None:
        cluster = LocalCluster(n_workers=min(args.cluster, videos), threads_per_worker=1, processes=True, host=LOCAL_HOST, scheduler_port=0,
                               dashboard_address=f"{LOCAL_HOST}:0", resources={"GPU": 1} if args.gpu else None,
                               silence_logs=logging.ERROR)
        with cluster, Client(cluster) as client:
            yield client
        return
    try:
        if Path(args.scheduler).is_file():
            client = Client(scheduler_file=args.scheduler, timeout=CONNECT_TIMEOUT)
        else:
            client = Client(args.scheduler, timeout=CONNECT_TIMEOUT)
    except (OSError, ValueError, TypeError) as exc:  # refused, timed out, not an address
        raise DanFerError(f"cannot reach the Dask scheduler {args.scheduler}: {exc}") from exc
    with client:
        yield client


def _wait_for_workers(client, gpu: bool) -> tuple[dict[str, dict], list[str]]:
    """(every worker: address -> info, those that may run the videos) once there is one that may (one with the GPU
    resource for --gpu), saying so while waiting."""
    said = False
    while True:
        workers = client.scheduler_info(n_workers=-1)["workers"]
        usable = sorted(a for a, w in workers.items() if not gpu or w.get("resources", {}).get("GPU", 0) >= 1)
        if usable:
            return workers, usable
        if not said:
            need = "a worker with --resources GPU=1" if gpu else "a worker"
            _say(f"dask: waiting for {need} to join {client.scheduler.address}")
            said = True
        time.sleep(1.0)


def _check_here(files: tuple[FileRecord, ...], dask_worker=None) -> str | None:
    """Run on each worker before any task: None, or the StaleFileError's line."""
    try:
        check_files(files, f"worker {dask_worker.address}" if dask_worker is not None else "a worker")
    except StaleFileError as exc:
        return str(exc)
    return None


def plan(client, args: argparse.Namespace, files: tuple[FileRecord, ...]) -> dict[str, tuple[int, bool]]:
    """Wait for workers, check that each reads the client's files (DanFerError naming the first that does not), and
    split each host's cores between its workers: host -> (ONNX Runtime threads, landmark overlap), as the pool does."""
    from distributed.comm import get_address_host

    workers, usable = _wait_for_workers(client, args.gpu)
    stale = [line for line in client.run(_check_here, files, workers=usable).values() if line]
    if stale:
        more = f" (and {len(stale) - 1} more workers)" if len(stale) > 1 else ""
        raise DanFerError(stale[0] + more)
    crowded = sorted(a for a, w in workers.items() if w.get("nthreads", 1) > 1)
    if crowded:
        _say(f"dask: note: {crowded[0]} runs {workers[crowded[0]]['nthreads']} threads; a worker analyses one video at a time, "
             "so start workers with --nthreads 1 (and more of them: --nworkers)")
    per_host: dict[str, list[int]] = defaultdict(list)
    for address, cpus in client.run(host_cpus).items():
        per_host[get_address_host(address)].append(cpus)
    return {host: (max(1, min(cpus) // len(cpus)), len(cpus) == 1 or min(cpus) > 2 * len(cpus)) for host, cpus in per_host.items()}


# -------------------------------------------------------------------------------------- the tasks


def failure(exc: BaseException | None) -> str:
    """One line for a task that failed."""
    from distributed import KilledWorker

    if exc is None:
        return "the task was cancelled"
    if isinstance(exc, KilledWorker):
        try:
            last = f"; the last was {exc.last_worker.address}, whose log may say why"
        except (AttributeError, IndexError):  # another version of Dask
            last = ""
        return f"every worker that analysed it died (a video that crashes the decoder, or too little memory?){last}"
    return f"{type(exc).__name__}: {first_line(exc)}"


class Tasks:
    """One task per video on ``client``, each tried 1 + ``retries`` times; ``run`` returns the results by video."""

    def __init__(self, client, options: dict, files: tuple[FileRecord, ...], *, retries: int, gpu: bool, bars) -> None:
        self.client, self.options, self.files, self.retries = client, options, files, retries
        self.resources = {"GPU": 1} if gpu else None
        self.bar_videos, self.bar_frames = bars
        self.topic = f"dan-fer-frames-{uuid.uuid4().hex[:12]}"  # this batch's frame counts, from the workers
        self.pending: dict = {}  # future -> (video, csv, attempt)
        self.results: dict[str, dict] = {}

    def submit(self, video: str, csv_path: str, attempt: int = 1):
        key = f"dan-fer-{Path(csv_path).stem}-{uuid.uuid4().hex[:8]}"
        future = self.client.submit(video_task, video, csv_path, self.options, self.files, self.topic, key=key, pure=False,
                                    resources=self.resources, priority=attempt - 1)  # a retry goes before new videos
        self.pending[future] = (video, csv_path, attempt)
        return future

    def run(self, todo: list[tuple[str, str]]) -> dict[str, dict]:
        from distributed import as_completed

        self.client.subscribe_topic(self.topic, lambda event: self.bar_frames.update(event[1]))
        try:
            done = as_completed([self.submit(v, c) for v, c in todo])
            for future in done:
                again = self._take(future)
                if again is not None:
                    done.add(again)
        except BaseException:
            self.client.cancel(list(self.pending))  # nothing more starts; running videos finish or die with their worker
            raise
        finally:
            self.client.unsubscribe_topic(self.topic)
        return self.results

    def _take(self, future):
        """Record a finished task; a retry's future when a failed one is tried again."""
        video, csv_path, attempt = self.pending.pop(future)
        if future.status == "finished":
            result = future.result()
        else:  # every worker that ran it died (KilledWorker), or Dask itself failed
            result = {"status": "error", "error": failure(future.exception() if future.status == "error" else None)}
        future.release()
        if result.get("stale"):
            raise DanFerError(result["error"])  # a worker with other files: stop before two models mix in one batch
        if result["status"] == "error" and attempt <= self.retries:
            return self.submit(video, csv_path, attempt + 1)
        if result["status"] == "error":
            tries = f" ({attempt} attempts)" if attempt > 1 else ""
            result = {"video": video, "csv": csv_path, "status": "error", "error": result["error"] + tries}
        self.results[video] = result
        self.bar_videos.update(1)
        return None


# ----------------------------------------------------------------------------------------- the run


def run_on_dask(args: argparse.Namespace, videos: list[Path], csvs: list[Path]) -> int:
    """The batch on Dask: skip complete videos, run the rest as tasks, then the same summary and report as the pool."""
    from tqdm import tqdm

    from dan_core.commands.batch import FIELDS, _report, is_complete

    files = record_files(args.model, args.landmarker)
    todo = [(str(v), str(c)) for v, c in zip(videos, csvs) if args.force or not is_complete(c, v)]
    todo.sort(key=lambda vc: -_size(vc[0]))  # the longest first: the last round of the batch is the shortest videos
    backend = "cuda" if args.gpu and args.backend == "cpu" else args.backend
    options = {**{name: getattr(args, name) for name in FIELDS if name not in ("model", "landmarker")},  # files: see record_files
               "backend": backend}
    t0 = time.perf_counter()
    bars = (tqdm(total=len(videos), initial=len(videos) - len(todo), unit="video", desc="videos", position=0,
                 disable=args.no_progress, file=sys.stderr, dynamic_ncols=True),
            tqdm(unit="frame", desc="frames", position=1, disable=args.no_progress, file=sys.stderr, dynamic_ncols=True))
    results: dict[str, dict] = {}
    workers, threads, finished = 0, 0, False
    try:
        if todo:
            with connect(args, len(todo)) as client:
                _announce(client)
                hosts = plan(client, args, files)
                workers, threads = len(client.scheduler_info(n_workers=-1)["workers"]), min(t for t, _ in hosts.values())
                tasks = Tasks(client, {**options, "hosts": hosts}, files, retries=1 if args.retries is None else args.retries,
                              gpu=args.gpu, bars=bars)
                results = tasks.run(todo)
        finished = True
    finally:
        for bar in bars:
            bar.close()
        if finished or args.cluster is not None:  # a stopped --scheduler batch leaves running videos to finish whole
            remove_attempts(csvs)
    frames = sum(int(r.get("frames", 0)) for r in results.values() if r.get("status") == "ok")
    # end-of-batch files (summary.csv) and the report: the same as the pool's
    return _report(args, videos, csvs, results, len(todo), frames, time.perf_counter() - t0, workers, threads)


def _size(path: str) -> int:
    try:
        return Path(path).stat().st_size
    except OSError:
        return 0  # a missing file fails at once wherever it runs


def _announce(client) -> None:
    """The scheduler's address and, when it has one, the dashboard's."""
    link = client.dashboard_link
    _say(f"dask: scheduler {client.scheduler.address}" + (f", dashboard {link}" if link else ""))


def _say(line: str) -> None:
    """One line on stderr (--json keeps stdout for the report), above the progress bars."""
    from tqdm import tqdm

    tqdm.write(line, file=sys.stderr)

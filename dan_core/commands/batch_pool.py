"""The worker processes of ``dan-fer batch``: one video at a time each, and they die with the batch.

A worker is a spawned process that gets its next video only when it has sent the result of the
last one, so a stopped batch (Ctrl+C, SIGTERM, a closed terminal) hands out nothing more: the
videos running are stopped (their CSVs say so, and a rerun does them again) and no other starts.

A worker never outlives the batch process. On Linux the kernel kills it when its parent dies
(``prctl(PR_SET_PDEATHSIG, SIGKILL)``); everywhere, a watchdog thread ends it when its parent's
pid changes, and it reads end-of-file on its pipe instead of a next video. So ``kill -9`` of the
batch leaves no process behind, and none starts a video once the batch is gone.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import wait

PR_SET_PDEATHSIG = 1
Task = tuple[str, str, dict]  # video, csv path, options


def die_with_parent(parent_pid: int) -> None:
    """End this process when ``parent_pid`` is no longer its parent (checked at once, then by the kernel and a watchdog)."""
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        except (OSError, AttributeError):
            pass  # the watchdog below still ends it within half a second
    if os.getppid() != parent_pid:  # the parent died before the kernel was told to watch it
        os._exit(1)

    def watch() -> None:
        while True:
            time.sleep(0.5)
            if os.getppid() != parent_pid:
                os._exit(1)

    threading.Thread(target=watch, name="dan-fer-parent-watch", daemon=True).start()


_stopping = threading.Event()


def _stop_once(signum, frame):
    """The first SIGTERM or SIGINT stops the worker; later ones do nothing, so the CSV's closing (and the
    pipeline's threads) are never interrupted half way (Ctrl+C reaches the worker, then the parent's SIGTERM).
    The handler stays installed: switching to SIG_IGN here races with a signal already pending."""
    if _stopping.is_set():
        return
    _stopping.set()
    raise KeyboardInterrupt  # the video's CSV is closed as "stopped before the end"


def worker_main(conn, parent_pid: int, init: Callable[[], None], run_one: Callable) -> None:
    """A worker: ``init()`` once, then ``run_one(video, csv, options, progress)`` for each video the pipe brings."""
    die_with_parent(parent_pid)
    signal.signal(signal.SIGTERM, _stop_once)
    signal.signal(signal.SIGINT, _stop_once)
    try:
        init()
        while True:
            task = conn.recv()  # EOFError when the parent is gone
            if task is None or os.getppid() != parent_pid:
                return
            video, csv_path, options = task
            result = run_one(video, csv_path, options, lambda n: conn.send(("progress", n)))
            conn.send(("done", result))
    except (KeyboardInterrupt, EOFError, OSError):
        return


@dataclass
class _Worker:
    process: object
    conn: object
    task: Task | None = None
    retired: bool = False


@dataclass
class Pool:
    """``workers`` processes running ``run_one`` over tasks; ``run(tasks)`` calls ``on_progress(n)`` and ``on_result(task, result)``."""

    ctx: object  # a multiprocessing context (spawn)
    workers: int
    init: Callable[[], None]
    run_one: Callable
    stop_timeout_s: float = 10.0
    _all: list[_Worker] = field(default_factory=list)

    def _start(self) -> _Worker:
        parent_end, child_end = self.ctx.Pipe()
        process = self.ctx.Process(target=worker_main, args=(child_end, os.getpid(), self.init, self.run_one),
                                   name="dan-fer-batch-worker", daemon=True)
        process.start()
        child_end.close()  # the worker's end lives in the worker only: its death reads as end-of-file here
        worker = _Worker(process, parent_end)
        self._all.append(worker)
        return worker

    def run(self, tasks: list[Task], on_progress: Callable[[int], None], on_result: Callable[[Task, dict], None]) -> None:
        pending = deque(tasks)
        retries: dict[str, int] = {}
        live: list[_Worker] = []
        try:
            while pending or live:
                while pending and len(live) < self.workers and sum(w.task is None for w in live) < len(pending):
                    live.append(self._start())
                for w in live:  # one video to each idle worker: nothing is queued ahead of them
                    if w.task is None and pending:
                        w.task = pending.popleft()
                        try:
                            w.conn.send(w.task)
                        except OSError:
                            pass  # it died while idle: seen below
                ready = set(wait([w.conn for w in live] + [w.process.sentinel for w in live], timeout=0.5))
                for w in live:
                    if (w.conn in ready or w.process.sentinel in ready) and not self._read(w, on_progress, on_result):
                        w.retired = True
                        task, w.task = w.task, None
                        if task is None:
                            continue
                        retries[task[0]] = retries.get(task[0], 0) + 1
                        if retries[task[0]] == 1:  # the worker died (a decoder crashed?): once more, in a fresh worker
                            pending.appendleft(task)
                        else:
                            on_result(task, {"video": task[0], "csv": task[1], "status": "error", "error": "the worker process died"})
                live = [w for w in live if not w.retired]
                if not pending:  # nothing left to hand out: idle workers may leave
                    for w in [w for w in live if w.task is None]:
                        self._dismiss(w)
                        live.remove(w)
        finally:
            self.close()

    def _read(self, w: _Worker, on_progress, on_result) -> bool:
        """Take what the worker sent; False when it is dead."""
        try:
            while w.conn.poll():
                kind, value = w.conn.recv()
                if kind == "progress":
                    on_progress(value)
                else:
                    task, w.task = w.task, None
                    on_result(task, value)
        except (EOFError, OSError):
            return False
        return w.process.is_alive()

    @staticmethod
    def _dismiss(w: _Worker) -> None:
        try:
            w.conn.send(None)
        except OSError:
            pass

    def close(self) -> None:
        """Idle workers are told to leave; busy ones are stopped (SIGTERM: their CSV says so); stragglers are killed."""
        for w in self._all:
            if w.process.is_alive():
                if w.task is None:
                    self._dismiss(w)
                else:
                    w.process.terminate()
        deadline = time.monotonic() + self.stop_timeout_s
        for w in self._all:
            w.process.join(max(0.0, deadline - time.monotonic()))
            if w.process.is_alive():
                w.process.kill()
                w.process.join()
            w.conn.close()
        self._all.clear()

"""Shared fixtures. Real files from ../shared are used where tests need real data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ["QT_QPA_PLATFORM"] = "offscreen"
os.environ.pop("QT_QPA_PLATFORM_PLUGIN_PATH", None)  # cv2 points this at its Qt 5 plugins
# liblsl (pylsl) reads this before its first use: announce and look for streams on this machine only
os.environ["LSLAPICFG"] = str(Path(__file__).resolve().parent / "lsl_api.cfg")
# tests import onnxruntime themselves too: no telemetry from them either (test_faults_cli checks dan-fer's own)
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"


def _shared(sub: str) -> Path:
    path = SHARED / sub
    if not SHARED.is_dir():
        pytest.skip(f"../shared is absent ({SHARED}); tests that need real data are skipped")
    return path


@pytest.fixture(scope="session")
def fer_dir() -> Path:
    return _shared("data/fer2013")


@pytest.fixture(scope="session")
def media_dir() -> Path:
    return _shared("media")


@pytest.fixture(scope="session")
def landmarker_path() -> Path:
    return _shared("models/face_landmarker.task")


def _count_frames(path: Path) -> int:
    import cv2

    cap = cv2.VideoCapture(str(path))
    n = 0
    while cap.read()[0]:
        n += 1
    cap.release()
    return n


@pytest.fixture(scope="session")
def count_frames():
    """``count_frames(path)``: the frames OpenCV can decode from a video file, read to the end."""
    return _count_frames



def _make_clip(dest: Path, start: int = 0, frames: int = 15, size: tuple[int, int] = (320, 180)) -> Path:
    """``frames`` frames of the shared face video from frame ``start`` (wrapping round), resized, as an mp4v file."""
    import cv2

    source = SHARED / "media" / "pexels_WolfgangLanger_emotions.mp4"
    cap = cv2.VideoCapture(str(source))
    cap.set(cv2.CAP_PROP_POS_FRAMES, start)
    writer = cv2.VideoWriter(str(dest), cv2.VideoWriter_fourcc(*"mp4v"), 25.0, size)
    for i in range(frames):
        ok, img = cap.read()
        if not ok:  # the source is shorter: play it again
            cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
            ok, img = cap.read()
        assert ok, f"frame {i} of {source}"
        writer.write(cv2.resize(img, size))
    writer.release()
    cap.release()
    return dest


@pytest.fixture(scope="session")
def make_clip(media_dir):
    """``make_clip(dest, start=0, frames=15, size=(320, 180))``: a short real clip of the shared face video."""
    return _make_clip


class DaskProcesses:
    """A Dask scheduler and workers started as separate processes, by hand as a user would, all on 127.0.0.1:
    ``dask scheduler --host 127.0.0.1 --dashboard-address 127.0.0.1:0`` and ``dask worker ... --host 127.0.0.1``."""

    def __init__(self, folder: Path, env: dict[str, str]) -> None:
        import json
        import subprocess
        import sys
        import time

        self.folder, self.env, self.procs = folder, env, []
        self.scheduler_file = folder / "scheduler.json"
        self.scheduler = self._start([sys.executable, "-m", "dask", "scheduler", "--host", "127.0.0.1", "--port", "0",
                                      "--dashboard-address", "127.0.0.1:0", "--scheduler-file", str(self.scheduler_file)],
                                     "scheduler", env)
        deadline = time.monotonic() + 60
        while not self.scheduler_file.is_file() and time.monotonic() < deadline:
            assert self.scheduler.poll() is None, (folder / "scheduler.log").read_text()
            time.sleep(0.1)
        time.sleep(0.2)  # the file is written whole, then the scheduler listens
        self.address = json.loads(self.scheduler_file.read_text())["address"]
        self._subprocess = subprocess

    def _start(self, cmd: list[str], name: str, env: dict[str, str]):
        import subprocess

        log = open(self.folder / f"{name}.log", "wb")
        proc = subprocess.Popen(cmd, cwd=self.folder, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        self.procs.append(proc)
        return proc

    def add_workers(self, n: int, *, name: str = "workers", env: dict[str, str] | None = None, resources: str | None = None):
        """``dask worker --nworkers n --nthreads 1`` (one video at a time each); returns the process (its nanny's parent)."""
        import sys

        cmd = [sys.executable, "-m", "dask", "worker", "--scheduler-file", str(self.scheduler_file), "--nworkers", str(n),
               "--nthreads", "1", "--host", "127.0.0.1", "--dashboard-address", "127.0.0.1:0"]
        return self._start(cmd + (["--resources", resources] if resources else []), name, env or self.env)

    def wait_for_workers(self, client, n: int, timeout: float = 180) -> list[str]:
        client.wait_for_workers(n, timeout=timeout)
        return sorted(client.scheduler_info(n_workers=-1)["workers"])

    def pids(self) -> list[int]:
        """Every process of the cluster: scheduler, worker commands, nannies, workers."""
        import psutil

        found = []
        for proc in self.procs:
            try:
                found += [proc.pid, *(c.pid for c in psutil.Process(proc.pid).children(recursive=True))]
            except psutil.NoSuchProcess:
                pass
        return found

    def close(self) -> None:
        import signal

        for proc in self.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(20)
            except self._subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


@pytest.fixture
def offline_landmarker(monkeypatch, tmp_path):
    """No landmarker download, no $DAN_FER_LANDMARKER, and an empty per-user cache: the app finds only what it is given."""
    from dan_core.pipeline import landmarks as lmk

    monkeypatch.setenv(lmk.NO_DOWNLOAD_ENV, "1")
    monkeypatch.delenv(lmk.ENV_VAR, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


@pytest.fixture(scope="session")
def dask_processes():
    """``dask_processes(folder, env)``: a scheduler started as its own process (add workers with ``add_workers``)."""
    started: list[DaskProcesses] = []

    def start(folder: Path, env: dict[str, str]) -> DaskProcesses:
        started.append(DaskProcesses(folder, env))
        return started[-1]

    yield start
    for cluster in started:
        cluster.close()


def _socket_addresses(pids: list[int]) -> set[str]:
    """The local addresses (ip) of every internet socket the processes ``pids`` hold, listening or connected."""
    import psutil

    found = set()
    for pid in pids:
        try:
            process = psutil.Process(pid)
            conns = process.net_connections(kind="inet") if hasattr(process, "net_connections") else process.connections("inet")
        except psutil.NoSuchProcess:
            continue
        found |= {c.laddr.ip for c in conns if c.laddr}
    return found


@pytest.fixture(scope="session")
def socket_addresses():
    """``socket_addresses(pids)``: the local IP addresses of every internet socket those processes hold."""
    return _socket_addresses

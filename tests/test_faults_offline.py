"""Fault suite, part 2: the first start without the network, and the landmarker's download going wrong.

Network traffic goes only to this machine (a local socket that accepts and never answers).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dan_core.errors import DanFerError
from dan_core.pipeline import landmarks as lmk
from dan_core.pipeline.timeline import read_timeline

pytestmark = pytest.mark.faults

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def empty_cache(monkeypatch, tmp_path) -> Path:
    cache = tmp_path / "empty cache"
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    monkeypatch.delenv(lmk.ENV_VAR, raising=False)
    monkeypatch.setenv(lmk.NO_DOWNLOAD_ENV, "1")
    return cache


def test_the_shipped_landmarker_is_the_official_file_with_its_licence():
    assert lmk.SHIPPED_LANDMARKER == ROOT / "models" / "face_landmarker.task"
    assert lmk.SHIPPED_LANDMARKER.stat().st_size == lmk.LANDMARKER_BYTES
    assert lmk.sha256_of(lmk.SHIPPED_LANDMARKER) == lmk.LANDMARKER_SHA256
    notice = (ROOT / "models" / "LICENSE-face_landmarker.txt").read_text(encoding="utf-8")
    assert "Apache License" in notice and lmk.LANDMARKER_SHA256 in notice
    assert lmk.LANDMARKER_SHA256 in (ROOT / "models" / "README.md").read_text(encoding="utf-8")


def test_resolution_order_with_the_shipped_copy(tmp_path, monkeypatch, empty_cache, landmarker_path):
    assert lmk.resolve_landmarker(None) == lmk.SHIPPED_LANDMARKER  # offline, empty cache: the shipped copy
    other = tmp_path / "mine.task"
    shutil.copy(landmarker_path, other)
    monkeypatch.setenv(lmk.ENV_VAR, str(other))
    assert lmk.resolve_landmarker(None) == other  # the environment variable comes before it
    assert lmk.resolve_landmarker(landmarker_path) == landmarker_path  # and --landmarker before both
    monkeypatch.delenv(lmk.ENV_VAR)
    cached = lmk.cache_dir() / lmk.LANDMARKER_FILE
    cached.parent.mkdir(parents=True)
    shutil.copy(landmarker_path, cached)
    assert lmk.resolve_landmarker(None) == lmk.SHIPPED_LANDMARKER  # the shipped copy before the cache


def test_a_damaged_shipped_copy_is_reported_and_passed_over(tmp_path, monkeypatch, empty_cache, landmarker_path, caplog):
    damaged = tmp_path / "models" / lmk.LANDMARKER_FILE
    damaged.parent.mkdir()
    damaged.write_bytes(landmarker_path.read_bytes()[:-10])  # e.g. a checkout cut short
    monkeypatch.setattr(lmk, "SHIPPED_LANDMARKER", damaged)
    cached = lmk.cache_dir() / lmk.LANDMARKER_FILE
    cached.parent.mkdir(parents=True)
    shutil.copy(landmarker_path, cached)
    with caplog.at_level(logging.WARNING, logger=lmk.__name__):
        assert lmk.resolve_landmarker(None) == cached
    assert len(caplog.records) == 1 and "damaged" in caplog.text and "git checkout" in caplog.text


def test_a_corrupt_cached_copy_is_reported_before_the_fresh_download(tmp_path, monkeypatch, empty_cache, landmarker_path,
                                                                       caplog):
    monkeypatch.setattr(lmk, "SHIPPED_LANDMARKER", tmp_path / "none" / lmk.LANDMARKER_FILE)
    monkeypatch.setattr(lmk, "LANDMARKER_URL", landmarker_path.resolve().as_uri())  # a local "download"
    cached = lmk.cache_dir() / lmk.LANDMARKER_FILE
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"half a file")
    with caplog.at_level(logging.WARNING, logger=lmk.__name__):
        assert lmk.resolve_landmarker(None, download=True) == cached
    messages = [r.getMessage() for r in caplog.records]
    assert "corrupt" in messages[0] and "moved to face_landmarker.corrupt" in messages[0] and "fresh copy" in messages[0]
    assert messages[1].startswith("downloading face_landmarker.task")
    assert lmk.sha256_of(cached) == lmk.LANDMARKER_SHA256


def test_a_stalled_network_is_reported_within_the_timeout(tmp_path, monkeypatch, empty_cache, caplog):
    """A server that accepts the connection and never answers, on this machine."""
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(lmk, "SHIPPED_LANDMARKER", tmp_path / "none" / lmk.LANDMARKER_FILE)
    monkeypatch.setattr(lmk, "DOWNLOAD_TIMEOUT_S", 1.0)
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)  # the kernel completes the handshake; nobody ever reads or answers
        monkeypatch.setattr(lmk, "LANDMARKER_URL", f"http://127.0.0.1:{server.getsockname()[1]}/face_landmarker.task")
        t0 = time.monotonic()
        with caplog.at_level(logging.WARNING, logger=lmk.__name__), pytest.raises(DanFerError) as info:
            lmk.resolve_landmarker(None, download=True)
        waited = time.monotonic() - t0
    assert waited < 5
    assert caplog.records[0].getMessage().startswith("downloading face_landmarker.task")  # said before the wait
    text = str(info.value)
    assert "no answer from 127.0.0.1" in text and "stalled" in text and "--landmarker" in text and "\n" not in text
    assert list(lmk.cache_dir().iterdir()) == []  # no partial file left behind


def test_analyze_a_photo_offline_with_an_empty_cache(tmp_path, media_dir):
    """`dan-fer analyze PHOTO --csv out.csv`: no network, DAN_FER_LANDMARKER unset, an empty cache."""
    env = {k: v for k, v in os.environ.items() if k != lmk.ENV_VAR}
    env.update(XDG_CACHE_HOME=str(tmp_path / "empty cache"), HOME=str(tmp_path / "home"), PYTHONPATH=str(ROOT),
               http_proxy="http://127.0.0.1:9", https_proxy="http://127.0.0.1:9")  # any download attempt fails fast
    csv_path = tmp_path / "out.csv"
    proc = subprocess.run([sys.executable, "-m", "dan_core", "analyze", str(media_dir / "whitehouse_obama_portrait_smiling.jpg"),
                           "--csv", str(csv_path), "--json", "--no-progress"], env=env, cwd=tmp_path, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["faces"] == 1
    _, cols, meta = read_timeline(csv_path)
    assert len(cols["face_id"]) == 1 and "download" not in proc.stderr
    assert not (tmp_path / "empty cache" / "dan-fer").exists()  # nothing was fetched or cached


# ----------------------------------------------------------------------------- desktop libraries (xcb)
def _qt_xcb_library() -> Path:
    import PySide6

    lib = Path(PySide6.__file__).parent / "Qt" / "lib" / "libQt6XcbQpa.so.6"
    if not sys.platform.startswith("linux") or not lib.is_file() or not shutil.which("ldd"):
        pytest.skip("needs Linux, PySide6's xcb library and ldd")
    return lib


def _ldd_not_found(lib: Path) -> set[str]:
    out = subprocess.run(["ldd", str(lib)], capture_output=True, text=True, timeout=60).stdout
    return {line.split()[0] for line in out.splitlines() if "not found" in line}


def test_missing_xcb_libraries_are_the_ones_the_loader_cannot_find():
    from app.xcb import XCB_LIBRARIES, missing_xcb_libraries

    not_found = _ldd_not_found(_qt_xcb_library())
    assert not_found <= set(XCB_LIBRARIES)  # every library Qt's xcb plugin may lack has its package named
    assert set(missing_xcb_libraries()) == not_found


@pytest.mark.parametrize("env,expected", [
    ({"DISPLAY": ":0"}, True), ({"DISPLAY": ":0", "WAYLAND_DISPLAY": "wayland-0"}, False), ({}, False),
    ({"QT_QPA_PLATFORM": "xcb"}, True), ({"QT_QPA_PLATFORM": "offscreen", "DISPLAY": ":0"}, False),
    ({"QT_QPA_PLATFORM": "wayland", "DISPLAY": ":0"}, False),
])
def test_the_xcb_check_runs_only_where_qt_would_use_xcb(env, expected):
    from app.xcb import uses_xcb

    assert uses_xcb(env) is expected


def test_app_without_the_xcb_libraries_is_one_line_with_the_apt_command(tmp_path):
    """On a fresh Debian/Ubuntu machine Qt aborted with "could not load the Qt platform plugin xcb"."""
    not_found = _ldd_not_found(_qt_xcb_library())
    if not not_found:
        pytest.skip("every xcb library is installed here")
    env = {k: v for k, v in os.environ.items() if k not in ("QT_QPA_PLATFORM", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM_PLUGIN_PATH")}
    env.update(DISPLAY=":99", PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, "-m", "dan_core", "app", "--settings-file", str(tmp_path / "s.ini")], env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2  # not Qt's abort (134)
    [line] = proc.stderr.splitlines()
    assert line.startswith("dan-fer app: error:") and "sudo apt-get install" in line
    from app.xcb import XCB_LIBRARIES

    assert all(name in line and XCB_LIBRARIES[name] in line for name in not_found)

"""The desktop app as a study instrument (pytest-qt, offscreen; real MediaPipe, ONNX Runtime and video): the live
timeline on media time, IDs across a replay, R after the end of a video, a still recorded, the status bar's messages,
review mode and SIGTERM. Each test is a bug that was seen."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pytestqt")

from PySide6.QtCore import QSettings, Qt  # noqa: E402
from PySide6.QtGui import QFontMetrics  # noqa: E402
from PySide6.QtTest import QTest  # noqa: E402

from app.state import AppSettings  # noqa: E402
from app.window import MainWindow  # noqa: E402
from dan_core.pipeline.timeline import load_timeline, sidecar_path  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 60_000


pytestmark = pytest.mark.usefixtures("offline_landmarker")  # conftest: no download, no user cache


@pytest.fixture
def window(qtbot, tmp_path, landmarker_path):
    settings = AppSettings(landmarker=str(landmarker_path), backend="cpu", record_dir=str(tmp_path / "rec"))
    w = MainWindow(store=QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat), settings=settings, cameras=[])
    qtbot.addWidget(w)
    w.resize(1100, 720)
    w.show()
    yield w
    w.shutdown()


@pytest.fixture(scope="module")
def clip(tmp_path_factory, make_clip) -> Path:
    """A second of the face video (25 frames at 25 fps)."""
    return make_clip(tmp_path_factory.mktemp("clip") / "clip.mp4", start=100, frames=25)


def _face_shown(qtbot, w):
    qtbot.waitUntil(lambda: w.last_packet is not None and w.last_packet.result is not None and len(w.last_packet.result.faces) > 0,
                    timeout=TIMEOUT)


def _ended(qtbot, w):
    qtbot.waitUntil(lambda: w.banners.get("ended") is not None, timeout=TIMEOUT)


def test_live_timeline_curves_and_markers_on_media_time_still_when_paused(qtbot, window, media_dir, tmp_path):
    """Bug: curves were plotted on the wall clock and markers on media time (a marker drifted 1.9 s under load), and a
    paused video's chart kept scrolling with frozen values."""
    w = window
    w.start(str(media_dir / "pexels_WolfgangLanger_emotions.mp4"))
    _face_shown(qtbot, w)
    w.recording.start_recording(tmp_path / "t.csv")
    qtbot.waitUntil(lambda: (w.last_packet.recording_rows or 0) >= 5, timeout=TIMEOUT)
    QTest.keyClick(w, Qt.Key.Key_1)
    qtbot.waitUntil(lambda: len(w.timeline.marker_labels()) == 1, timeout=TIMEOUT)
    qtbot.wait(600)
    QTest.keyClick(w, Qt.Key.Key_Space)  # pause
    qtbot.wait(600)
    for opacity in (0.3, 0.4):  # the paused frame drawn again, then again 1.2 s later on the wall clock
        with qtbot.waitSignal(w.displayed, timeout=TIMEOUT):
            w.engine.set_options(opacity=opacity)
        qtbot.wait(300)
        if opacity == 0.3:
            x_before = w.timeline._curves[0].xData.copy()
            qtbot.wait(1200)
    shown_at = w.last_packet.media_time_s
    marker = w.markers._markers[0]
    assert np.array_equal(w.timeline._curves[0].xData, x_before)  # the chart did not scroll
    line = next(m for m in w.timeline._markers if m.isVisible())
    assert line.value() == pytest.approx(marker.time_s - shown_at, abs=1e-6)  # the marker on the curves' clock
    assert abs(w.timeline._curves[0].xData[-1]) < 0.2  # the newest sample at the right edge: the frame on screen


def test_a_replayed_person_keeps_their_id(qtbot, window, clip):
    """Bug: after replaying with Space the same person became "#2"."""
    w = window
    w.start(str(clip))
    _face_shown(qtbot, w)
    assert {f.face_id for f in w.last_packet.result.faces} == {1}
    _ended(qtbot, w)
    QTest.keyClick(w, Qt.Key.Key_Space)  # play it again
    qtbot.waitUntil(lambda: w.banners.get("ended") is None and w.last_packet.media_time_s < 0.3, timeout=TIMEOUT)
    qtbot.waitUntil(lambda: w.last_packet.result is not None and bool(w.last_packet.result.faces), timeout=TIMEOUT)
    assert {f.face_id for f in w.last_packet.result.faces} == {1}


def test_r_after_the_end_of_a_video_records_it_from_the_start(qtbot, window, clip):
    """Bug: R after the video ended started a recording that saved 0 rows."""
    w = window
    w.start(str(clip))
    _face_shown(qtbot, w)
    _ended(qtbot, w)
    QTest.keyClick(w, Qt.Key.Key_R)
    qtbot.waitUntil(lambda: w.recording.info is not None and w.recording.info.active, timeout=TIMEOUT)
    qtbot.waitUntil(lambda: w.recording.info is not None and not w.recording.info.active, timeout=TIMEOUT)  # to the end
    info = w.recording.info
    assert info.message.startswith("End of video. Recording saved") and info.rows > 0
    meta = json.loads(sidecar_path(info.csv_path).read_text())
    t = load_timeline(info.csv_path)
    assert t.frames.frame[0] <= 2 and meta["frames"]["processed"] == len(t.frames.frame) == info.rows
    assert meta["frames"]["read"] == meta["frames"]["processed"] + meta["frames"]["dropped"]


def test_recording_a_still_image_records_its_frame_with_the_blendshapes_setting(qtbot, window, media_dir):
    """R on a still recorded nothing (its one frame had gone by); the Settings' blendshapes go into the recording."""
    w = window
    w.settings.apply(AppSettings(**{**w.prefs.current.to_mapping(), "blendshapes": True}))
    w.start(str(media_dir / "whitehouse_obama_portrait_smiling.jpg"))
    _face_shown(qtbot, w)
    w.recording.start_recording()
    qtbot.waitUntil(lambda: (w.last_packet.recording_rows or 0) >= 1, timeout=TIMEOUT)
    w.recording.stop_recording()
    qtbot.waitUntil(lambda: w.recording.info is not None and not w.recording.info.active, timeout=TIMEOUT)
    info = w.recording.info
    assert info.rows == 1
    t = load_timeline(info.csv_path)
    assert t.cols["mouthSmileLeft"][0] > 0.3 and json.loads(sidecar_path(info.csv_path).read_text())["options"]["blendshapes"]


def test_status_messages_are_not_cut_by_the_rec_label(qtbot, window, clip):
    """Bug: "Recording to /roc": the labels on the right took the whole status bar."""
    w = window
    w.start(str(clip))
    _face_shown(qtbot, w)
    w.recording.start_recording()
    qtbot.waitUntil(lambda: w.statusBar().currentMessage().startswith("Recording to"), timeout=TIMEOUT)
    qtbot.waitUntil(lambda: "fps" in w.status.fps_label.text() and "REC" in w.recording.rec_label.text(), timeout=TIMEOUT)
    qtbot.wait(600)  # the labels' texts at full length
    bar = w.statusBar()
    taken = sum(label.width() for label in (w.recording.rec_label, *w.status.labels)) + 40  # + spacing and the grip
    room = bar.width() - taken
    for message in (bar.currentMessage(), "Marker '1 = stimulus on' at 12.34 s (key)",
                    "Marker 'M' not written: markers are written while recording (R)"):
        assert QFontMetrics(bar.font()).horizontalAdvance(message) <= room, (message, room)


def test_review_mode_closes_on_sigterm(tmp_path, media_dir, landmarker_path):
    """Bug: review mode ignored SIGTERM; the next click printed a traceback ending in dan_core.signals.Terminated."""
    from dan_core import cli

    csv_path = tmp_path / "r.csv"
    assert cli.main(["analyze", str(media_dir / "whitehouse_obama_portrait_smiling.jpg"), "--csv", str(csv_path),
                     "--landmarker", str(landmarker_path), "--no-progress"]) == 0
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "dan_core", "app", "--review", str(csv_path)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(8)  # Qt up, the window shown
        assert proc.poll() is None, proc.communicate()
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 143 and "Traceback" not in err and "SIGTERM" in err, err

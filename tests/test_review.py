"""Review mode (pytest-qt, offscreen): a recording whose run was killed, seeking by timeline clicks, keys, markers, clips."""

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

from PySide6.QtCore import QPoint, QPointF, Qt  # noqa: E402
from PySide6.QtTest import QTest  # noqa: E402

from app.areas.review import ReviewWindow  # noqa: E402
from dan_core.pipeline.events import EventWriter, events_path  # noqa: E402
from dan_core.pipeline.review import Session  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
VIDEO = "pexels_WolfgangLanger_emotions.mp4"


@pytest.fixture(scope="module")
def killed(tmp_path_factory, media_dir, landmarker_path) -> Path:
    """A real ``dan-fer analyze`` run killed with SIGKILL part way through a 16 s clip; two markers beside it."""
    import cv2

    folder = tmp_path_factory.mktemp("killed")
    clip = folder / "clip.mp4"
    cap = cv2.VideoCapture(str(media_dir / VIDEO))
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"mp4v"), 25.0, (320, 180))
    for i in range(400):
        ok, img = cap.read()
        if not ok:  # the source video is shorter: play it again
            cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
            ok, img = cap.read()
        assert ok, i
        writer.write(cv2.resize(img, (320, 180)))
    writer.release()
    cap.release()
    csv_path = folder / "run.csv"
    proc = subprocess.Popen([sys.executable, "-m", "dan_core.cli", "analyze", str(clip), "--csv", str(csv_path), "--no-progress",
                             "--landmarker", str(landmarker_path)], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if csv_path.exists() and len(csv_path.read_text().splitlines()) > 30:
            break
        time.sleep(0.1)
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait(30)
    rows = len(csv_path.read_text().splitlines()) - 1
    assert 30 <= rows < 400, "the run should have been killed part way"
    assert "finished" not in json.loads(csv_path.with_name("run.csv.json").read_text())
    w = EventWriter(events_path(csv_path))
    w.add(0.4, 10, "1 = stimulus on", "key")
    w.add(0.8, 20, "stimulus off", "lsl")
    w.close()
    return csv_path


def test_session_of_a_killed_run(killed):
    s = Session(killed)
    assert not s.complete and s.video_kind == "source" and len(s) >= 30 and [e.label for e in s.events][0] == "1 = stimulus on"
    assert s.position_at(0.4) == int(np.flatnonzero(s.frames == 10)[0])
    img = s.image(s.position_at(0.4))
    assert img is not None and img.shape == (180, 320, 3)
    raw = s.raw_image(s.position_at(0.4))
    assert np.abs(img.astype(int) - raw.astype(int)).sum() > 0  # the faces' boxes and bars are drawn on it
    s.close()


def test_review_window_seeks_on_a_timeline_click_steps_and_jumps(qtbot, killed, tmp_path):
    w = ReviewWindow(killed, snapshot_dir=tmp_path)
    qtbot.addWidget(w)
    with qtbot.waitActive(w):  # the keys are the window's shortcuts
        w.show()
        w.activateWindow()
    assert "stopped early" in w.windowTitle() and w.view.has_frame() and w.probs.face_count >= 1
    first = w.current_image.copy()
    # a click on the timeline at t = 0.8 s seeks the video there
    vb = w.timeline.plot.getPlotItem().vb
    scene = vb.mapViewToScene(QPointF(0.8, 0.5))
    pos = w.timeline.plot.mapFromScene(scene)
    with qtbot.waitSignal(w.shown, timeout=5000) as got:
        QTest.mouseClick(w.timeline.plot.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, QPoint(pos.x(), pos.y()))
    assert abs(float(w.session.times[got.args[0]]) - 0.8) < 0.05
    assert np.abs(w.current_image.astype(int) - first.astype(int)).mean() > 1.0  # another picture
    assert w.timeline.cursor.value() == pytest.approx(float(w.session.times[w.position]))
    at = w.position
    QTest.keyClick(w, Qt.Key.Key_Right)
    assert w.position == at + 1
    QTest.keyClick(w, Qt.Key.Key_Left)
    QTest.keyClick(w, Qt.Key.Key_Left)
    assert w.position == at - 1
    # dragging the cursor seeks too
    w.timeline.cursor.setValue(0.2)
    assert abs(float(w.session.times[w.position]) - 0.2) < 0.05
    # the marker list jumps to a marker
    assert w.markers.count() == 2
    w.markers.itemClicked.emit(w.markers.item(0))
    assert int(w.session.frames[w.position]) == 10


def test_review_snapshot_and_clip_export(qtbot, killed, tmp_path):
    import cv2

    w = ReviewWindow(killed, snapshot_dir=tmp_path)
    qtbot.addWidget(w)
    with qtbot.waitActive(w):
        w.show()
        w.activateWindow()
    w.seek(0.2)
    QTest.keyClick(w, Qt.Key.Key_I)
    w.seek(0.6)
    QTest.keyClick(w, Qt.Key.Key_O)
    assert w.timeline.in_line.isVisible() and w.timeline.out_line.isVisible()
    clip = tmp_path / "clip.mp4"
    n = w.export_clip(clip)
    assert n == w.out_pos - w.in_pos + 1 == 11
    cap = cv2.VideoCapture(str(clip))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == n
    cap.release()
    shot = w.snapshot()
    assert shot is not None and cv2.imread(str(shot)).shape == (180, 320, 3)


def test_cli_review_of_a_missing_file_is_one_line(tmp_path):
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    proc = subprocess.run([sys.executable, "-m", "dan_core.cli", "app", "--review", str(tmp_path / "nope.csv")], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stderr.strip().count("\n") == 0 and "nope.csv" in proc.stderr


def test_file_open_recording_from_the_main_window(qtbot, killed, tmp_path):
    from PySide6.QtCore import QSettings

    from app.state import AppSettings
    from app.window import MainWindow

    w = MainWindow(store=QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat),
                   settings=AppSettings(record_dir=str(tmp_path)), cameras=[])
    qtbot.addWidget(w)
    try:
        assert w.review.open_action.text() == "Open r&ecording…"
        review = w.review.open_review(killed)
        assert review is not None and review.isVisible() and len(review.session) >= 30
        review.close()
        assert w.review.open_review(tmp_path / "nope.csv") is None
        assert "nope.csv" in w.banners.texts().get("source", "")
    finally:
        w.shutdown()


def test_cli_review_screenshot(tmp_path, killed):
    shot = tmp_path / "review.png"
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    proc = subprocess.run([sys.executable, "-m", "dan_core.cli", "app", "--review", str(killed), "--screenshot", str(shot),
                           "--exit-after", "0.5", "--size", "1000x700"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-1500:]
    from PySide6.QtGui import QImage

    img = QImage(str(shot))
    assert (img.width(), img.height()) == (1000, 700)

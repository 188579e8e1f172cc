"""The desktop app with pytest-qt, offscreen: real MediaPipe, real ONNX Runtime, the real video.

Fake sources (a camera that is unplugged after a few frames, one that raises) are used only for
the error paths a real device cannot produce on demand.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pytestqt")

from PySide6.QtCore import QPoint, QSettings, Qt  # noqa: E402
from PySide6.QtTest import QTest  # noqa: E402

from app.engine import Engine  # noqa: E402
from app.state import AppSettings  # noqa: E402
from app.window import MainWindow  # noqa: E402
from dan_core.errors import DanFerError  # noqa: E402
from dan_core.pipeline import landmarks as lmk  # noqa: E402
from dan_core.pipeline.heatmap import heatmap_modes  # noqa: E402
from dan_core.pipeline.timeline import sidecar_path  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
VIDEO = "pexels_WolfgangLanger_emotions.mp4"
TIMEOUT = 60_000  # ms; the first frame waits for MediaPipe and ONNX Runtime to load on a busy 2-core machine


pytestmark = pytest.mark.usefixtures("offline_landmarker")  # conftest: no download, no user cache


@pytest.fixture(scope="session")
def model_path(tmp_path_factory) -> Path:
    """The shipped model when present, else a freshly exported (untrained) DAN with the same contract."""
    from dan_core.paths import MODELS_DIR

    shipped = sorted(MODELS_DIR.glob("*.onnx"))
    if shipped:
        return shipped[0]
    from dan_core.model.dan import DAN, DANConfig
    from dan_core.training.export import export_onnx

    path = tmp_path_factory.mktemp("model") / "dan_test.onnx"
    export_onnx(DAN(DANConfig(color="gray")), path)
    return path


@pytest.fixture
def settings(tmp_path, model_path, landmarker_path) -> AppSettings:
    return AppSettings(model=str(model_path), landmarker=str(landmarker_path), backend="cpu", record_dir=str(tmp_path / "rec"))


@pytest.fixture
def store(tmp_path) -> QSettings:
    return QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)


@pytest.fixture
def make_window(qtbot, store, settings):
    windows = []

    def make(*, engine: Engine | None = None, cameras=None, **changes) -> MainWindow:
        s = AppSettings(**{**settings.to_mapping(), **changes})
        w = MainWindow(store=store, settings=s, engine=engine, cameras=[] if cameras is None else cameras)
        qtbot.addWidget(w)
        w.resize(1100, 720)
        w.show()
        windows.append(w)
        return w

    yield make
    for w in windows:
        w.shutdown()


def wait_for_face(qtbot, window: MainWindow, *, timeout: int = TIMEOUT):
    qtbot.waitUntil(lambda: window.last_packet is not None and window.last_packet.result is not None
                    and len(window.last_packet.result.faces) > 0, timeout=timeout)
    return window.last_packet


# ------------------------------------------------------------------------------------ live video


def test_video_shows_face_bars_and_attention_overlay(qtbot, make_window, media_dir):
    w = make_window(heatmap="fused")
    w.start(str(media_dir / VIDEO))
    packet = wait_for_face(qtbot, w)
    face = packet.result.faces[0]
    assert w.view.has_frame()
    assert w.overlays.probs.face_count >= 1  # probability bars per face
    assert w.overlays.heads.has_strip  # crop + fused + per-head thumbnails of the selected face
    assert packet.heads.shape == (96, 96 * (2 + face.attention.shape[0]), 4)
    assert w.overlays.selected_face == face.face_id
    from dan_core.pipeline.precision import cpu_has_vnni

    expected = "CPU int8" if cpu_has_vnni() else "CPU"  # precision auto: the shipped int8 twin on CPUs with VNNI
    assert "onnxruntime" in w.status.backend_label.toolTip() and w.status.backend_label.text() == expected
    # the overlay changes the pixels inside the face box; with the overlay off they are the raw frame
    x, y, bw, bh = face.box
    inside = np.s_[y + bh // 3: y + 2 * bh // 3, x + bw // 3: x + 2 * bw // 3]
    w.sources.set_paused(True)  # one picture, so only the overlay differs between the two packets
    qtbot.wait(500)  # let a frame that was in flight land
    with qtbot.waitSignal(w.displayed, timeout=TIMEOUT):
        w.overlays.set_heatmap_mode("fused")
    fused_packet = w.last_packet
    with qtbot.waitSignal(w.displayed, timeout=TIMEOUT):
        w.overlays.set_heatmap_mode("off")
    assert w.last_packet.media_time_s == fused_packet.media_time_s
    fused, off = fused_packet.image[inside].astype(int), w.last_packet.image[inside].astype(int)
    assert np.abs(fused - off).mean() > 5.0
    qtbot.waitUntil(lambda: len(w.overlays.timeline_buffer) > 0, timeout=TIMEOUT)
    assert max(w.timeline.curve_lengths()) > 0


def test_heatmap_key_cycles_modes_and_persists(qtbot, make_window, store, media_dir):
    w = make_window(heatmap="off")
    w.start(str(media_dir / VIDEO))
    wait_for_face(qtbot, w)
    modes = heatmap_modes(w.overlays.num_heads)
    seen = []
    for _ in range(len(modes)):
        QTest.keyClick(w, Qt.Key.Key_H)
        seen.append(w.overlays.heatmap_mode)
        assert w.engine.options().heatmap == w.overlays.heatmap_mode
        assert w.overlays.heatmap_combo.currentData() == w.overlays.heatmap_mode
    assert seen == list(modes[1:]) + ["off"]
    with qtbot.waitSignal(w.displayed, timeout=TIMEOUT):
        w.overlays.set_heatmap_mode("all")
    store.sync()
    assert store.value("heatmap") == "all"


def test_recording_start_stop_writes_csv_rows(qtbot, make_window, media_dir, tmp_path):
    w = make_window()
    w.start(str(media_dir / VIDEO))
    wait_for_face(qtbot, w)
    out = tmp_path / "timeline.csv"
    with qtbot.waitSignal(w.engine.recording_changed, timeout=TIMEOUT):
        w.recording.start_recording(out)
    assert w.recording.is_recording and out.exists()
    qtbot.waitUntil(lambda: (w.last_packet.recording_rows or 0) >= 5, timeout=TIMEOUT)
    assert "REC" in w.recording.rec_label.text()
    with qtbot.waitSignal(w.engine.recording_changed, timeout=TIMEOUT) as blocker:
        QTest.keyClick(w, Qt.Key.Key_R)  # R toggles: stops
    info = blocker.args[0]
    assert not info.active and info.rows >= 5 and str(out) in info.message
    lines = out.read_text().splitlines()
    assert lines[0].startswith("time_s,frame,face_id,x,y,w,h,") and len(lines) - 1 == info.rows
    assert json.loads(sidecar_path(out).read_text())["rows"] == info.rows
    assert w.banners.get("recorded") is not None


def test_recording_with_annotated_video_in_the_record_folder(qtbot, make_window, media_dir, tmp_path):
    import cv2

    w = make_window(record_video=True)
    w.start(str(media_dir / VIDEO))
    wait_for_face(qtbot, w)
    with qtbot.waitSignal(w.engine.recording_changed, timeout=TIMEOUT) as started:
        QTest.keyClick(w, Qt.Key.Key_R)  # default names in the record folder
    csv_path, video_path = started.args[0].csv_path, started.args[0].video_path
    assert csv_path.parent == tmp_path / "rec" and video_path == csv_path.with_suffix(".mp4")
    qtbot.waitUntil(lambda: (w.last_packet.recording_rows or 0) >= 5, timeout=TIMEOUT)
    with qtbot.waitSignal(w.engine.recording_changed, timeout=TIMEOUT):
        QTest.keyClick(w, Qt.Key.Key_R)
    cap = cv2.VideoCapture(str(video_path))
    ok, frame = cap.read()
    assert ok and frame.shape == w.last_packet.image.shape and cap.get(cv2.CAP_PROP_FRAME_COUNT) >= 5
    cap.release()


def test_closing_the_window_while_recording_finishes_the_file(qtbot, make_window, media_dir, tmp_path):
    w = make_window()
    w.start(str(media_dir / VIDEO))
    wait_for_face(qtbot, w)
    out = tmp_path / "closing.csv"
    with qtbot.waitSignal(w.engine.recording_changed, timeout=TIMEOUT):
        w.recording.start_recording(out)
    qtbot.waitUntil(lambda: (w.last_packet.recording_rows or 0) >= 3, timeout=TIMEOUT)
    t0 = time.monotonic()
    w.close()
    assert time.monotonic() - t0 < 3.0  # a cooperative stop is quick
    assert not w._thread.isRunning()
    meta = json.loads(sidecar_path(out).read_text())
    assert meta["rows"] >= 3 and len(out.read_text().splitlines()) == meta["rows"] + 1


def test_still_image_redraws_on_option_change_and_snapshot(qtbot, make_window, media_dir, tmp_path):
    w = make_window(heatmap="fused")
    w.start(str(media_dir / "nasa_astronaut_eileen_collins.png"))
    first = wait_for_face(qtbot, w)
    assert w.sources.source.is_still
    with qtbot.waitSignal(w.displayed, timeout=TIMEOUT):
        QTest.keyClick(w, Qt.Key.Key_H)  # fused -> head1: the same still, drawn again
    assert w.last_packet.seq > first.seq and w.last_packet.media_time_s == first.media_time_s
    with qtbot.waitSignal(w.engine.snapshot_saved, timeout=TIMEOUT) as blocker:
        QTest.keyClick(w, Qt.Key.Key_S)
    assert Path(blocker.args[0]).is_file() and Path(blocker.args[0]).parent == tmp_path / "rec"


def test_group_photo_shows_several_faces_in_image_mode(qtbot, make_window, media_dir):
    w = make_window()
    w.start(str(media_dir / VIDEO))
    wait_for_face(qtbot, w)
    with qtbot.waitSignal(w.engine.pipeline_ready, timeout=TIMEOUT):  # a photo after a video: IMAGE mode
        w.sources.open_source(str(media_dir / "pexels_group_meeting.jpeg"))
    assert w.sources.source.mode == "image"
    qtbot.waitUntil(lambda: w.last_packet is not None and w.last_packet.result is not None
                    and len(w.last_packet.result.faces) >= 2, timeout=TIMEOUT)
    assert w.overlays.probs.face_count == len(w.last_packet.result.faces)
    # clicking a face in the view selects it
    other = next(f for f in w.last_packet.result.faces if f.face_id != w.overlays.selected_face)
    x, y, bw, bh = other.box
    t = w.view._target()  # where the frame lies in the view
    scale = t.width() / w.last_packet.image.shape[1]
    QTest.mouseClick(w.view, Qt.MouseButton.LeftButton, pos=QPoint(int(t.x() + (x + bw / 2) * scale), int(t.y() + (y + bh / 2) * scale)))
    assert w.overlays.selected_face == other.face_id and w.engine.options().selected_id == other.face_id


def test_pause_and_seek_a_video(qtbot, make_window, media_dir):
    w = make_window()
    w.start(str(media_dir / VIDEO))
    wait_for_face(qtbot, w)
    assert w.sources.seek_slider.isEnabled() and w.sources.seek_slider.maximum() > 100
    QTest.keyClick(w, Qt.Key.Key_Space)
    assert w.sources.paused and w.sources.play_button.text() == "Play"
    qtbot.wait(300)
    seq = w.last_packet.seq
    qtbot.wait(500)
    assert w.last_packet.seq <= seq + 1  # at most the frame that was in flight
    with qtbot.waitSignal(w.displayed, timeout=TIMEOUT, check_params_cb=lambda p: p.media_time_s >= 10.0):
        w.engine.seek(10.0)  # a seek while paused shows the frame there
    QTest.keyClick(w, Qt.Key.Key_Space)
    assert not w.sources.paused


def test_drop_a_file_opens_it_and_keys_toggle_fullscreen(qtbot, make_window, media_dir):
    from PySide6.QtCore import QMimeData, QPointF, QUrl
    from PySide6.QtGui import QDropEvent

    w = make_window(cameras=[])
    w.start(None)  # no camera: a message, then the user drops a video on the window
    assert w.banners.get("camera") is not None
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(media_dir / VIDEO))])
    event = QDropEvent(QPointF(50, 50), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    with qtbot.waitSignal(w.engine.source_opened, timeout=TIMEOUT):
        w.dropEvent(event)
    assert w.sources.source_combo.currentText() == VIDEO and w.banners.get("camera") is None
    wait_for_face(qtbot, w)
    qtbot.waitUntil(lambda: "analysed" in w.status.fps_label.text(), timeout=TIMEOUT)  # capture / processed / shown fps, latency
    assert ".onnx" in w.status.model_label.text() and "classes" in w.status.model_label.toolTip()
    QTest.keyClick(w, Qt.Key.Key_F)
    assert w.fullscreen_action.isChecked()
    QTest.keyClick(w, Qt.Key.Key_F)
    assert not w.fullscreen_action.isChecked()


# ------------------------------------------------------------------------------------ error paths


class FakeCamera:
    """A live source that delivers a few synthetic frames and is then unplugged."""

    is_live = True
    fps = 30.0
    frame_count = None
    name = "fake camera"

    def __init__(self, frames: int = 5, error: str | None = None) -> None:
        self.frames = frames
        self.error = error
        self.closed = False

    def __iter__(self):
        from dan_core.pipeline.sources import Frame

        for i in range(self.frames):
            yield Frame(np.full((120, 160, 3), 40 * (i % 5), np.uint8), i, i / self.fps)
        if self.error:
            raise DanFerError(self.error)

    def seek(self, time_s: float) -> None:
        raise DanFerError("cannot seek in a live source")

    def close(self) -> None:
        self.closed = True


def test_no_camera_shows_message_with_next_step(qtbot, make_window):
    w = make_window(cameras=[])
    w.start(None)
    banner = w.banners.get("camera")
    assert banner is not None and "No camera found" in banner.text
    assert "Open video or image…" in banner.button_labels()
    assert w.isVisible()


def test_camera_that_cannot_be_opened(qtbot, make_window):
    def open_source(spec):
        raise DanFerError(f"camera {spec} cannot be opened (available cameras: none found)")

    w = make_window(engine=Engine(open_source=open_source), cameras=[(0, "Fake cam")])
    with qtbot.waitSignal(w.engine.failed, timeout=TIMEOUT):
        w.start(None)
    assert "camera 0 cannot be opened" in w.banners.get("camera").text


def test_camera_unplugged_mid_stream_while_recording(qtbot, make_window, tmp_path):
    camera = FakeCamera(frames=40)
    w = make_window(engine=Engine(open_source=lambda spec: camera), cameras=[(0, "Fake cam")])
    out = tmp_path / "lost.csv"
    w.start("0")
    w.recording.start_recording(out)
    with qtbot.waitSignal(w.engine.failed, timeout=TIMEOUT, check_params_cb=lambda e: e.kind == "camera_lost"):
        pass
    qtbot.waitUntil(lambda: w.banners.get("camera_lost") is not None, timeout=TIMEOUT)
    assert "Retry camera" in w.banners.get("camera_lost").button_labels()
    qtbot.waitUntil(lambda: w.banners.get("recorded") is not None, timeout=TIMEOUT)  # the file was closed and the user told
    meta = json.loads(sidecar_path(out).read_text())  # no face in the fake camera's frames: one row for each, faces 0
    assert str(out) in w.banners.get("recorded").text and meta["rows"] == meta["frames"]["processed"]
    assert w.view.has_frame()  # the last picture stays; the window is alive
    QTest.keyClick(w, Qt.Key.Key_H)


def test_source_raising_mid_stream_is_reported(qtbot, make_window):
    camera = FakeCamera(frames=3, error="USB device disconnected")
    w = make_window(engine=Engine(open_source=lambda spec: camera), cameras=[(0, "Fake cam")])
    with qtbot.waitSignal(w.engine.failed, timeout=TIMEOUT, check_params_cb=lambda e: e.kind == "camera_lost"):
        w.start("0")
    qtbot.waitUntil(lambda: w.banners.get("camera_lost") is not None, timeout=TIMEOUT)
    assert "USB device disconnected" in w.banners.get("camera_lost").text


def test_unreadable_file(qtbot, make_window, tmp_path):
    bad = tmp_path / "broken video.mp4"
    bad.write_bytes(b"not a video at all" * 100)
    w = make_window()
    with qtbot.waitSignal(w.engine.failed, timeout=TIMEOUT, check_params_cb=lambda e: e.kind == "source"):
        w.start(str(bad))
    banner = w.banners.get("source")
    assert "broken video.mp4" in banner.text and "Open video or image…" in banner.button_labels()


def test_missing_model_keeps_showing_the_video(qtbot, make_window, media_dir, tmp_path):
    w = make_window(model=str(tmp_path / "nope.onnx"))
    with qtbot.waitSignal(w.engine.failed, timeout=TIMEOUT, check_params_cb=lambda e: e.kind == "model"):
        w.start(str(media_dir / VIDEO))
    banner = w.banners.get("model")
    assert "nope.onnx" in banner.text and "Choose model…" in banner.button_labels()
    qtbot.waitUntil(lambda: w.view.has_frame(), timeout=TIMEOUT)  # raw frames still play
    assert w.last_packet.result is None


def test_invalid_model_file(qtbot, make_window, media_dir, tmp_path):
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"\x00garbage" * 64)
    w = make_window(model=str(junk))
    with qtbot.waitSignal(w.engine.failed, timeout=TIMEOUT, check_params_cb=lambda e: e.kind == "model"):
        w.start(str(media_dir / VIDEO))
    assert w.banners.get("model") is not None


def test_unavailable_backend_offers_auto(qtbot, make_window, media_dir):
    import onnxruntime

    if "CUDAExecutionProvider" in onnxruntime.get_available_providers() and Path("/proc/driver/nvidia").exists():
        pytest.skip("this machine has CUDA")
    w = make_window(backend="cuda")
    with qtbot.waitSignal(w.engine.failed, timeout=TIMEOUT, check_params_cb=lambda e: e.kind == "backend"):
        w.start(str(media_dir / VIDEO))
    assert "Use auto backend" in w.banners.get("backend").button_labels()
    with qtbot.waitSignal(w.engine.pipeline_ready, timeout=TIMEOUT):
        w.banners.get("backend").click("Use auto backend")
    assert w.banners.get("backend") is None and w.prefs.current.backend == "auto"


def test_missing_landmarker_offline(qtbot, make_window, media_dir, monkeypatch, tmp_path):
    monkeypatch.setattr(lmk, "SHIPPED_LANDMARKER", tmp_path / "no-models" / lmk.LANDMARKER_FILE)
    w = make_window(landmarker="")  # no path, no env var, no shipped copy, empty cache, downloads disabled
    with qtbot.waitSignal(w.engine.failed, timeout=TIMEOUT, check_params_cb=lambda e: e.kind == "landmarker"):
        w.start(str(media_dir / VIDEO))
    banner = w.banners.get("landmarker")
    assert "face_landmarker.task" in banner.text and "Choose landmarker…" in banner.button_labels()


def test_settings_persist_between_windows(qtbot, make_window, store):
    w = make_window()
    w.overlays.opacity_slider.setValue(80)
    w.overlays.landmarks_check.setChecked(True)
    w.shutdown()
    from app.state import load_settings

    again = load_settings(store)
    assert again.opacity == pytest.approx(0.8) and again.landmarks is True


# ------------------------------------------------------------------------------------ automation


@pytest.mark.slow
def test_cli_automation_records_screenshots_and_exits_zero(tmp_path, media_dir, landmarker_path, model_path):
    out, shot = tmp_path / "auto.csv", tmp_path / "auto.png"
    cmd = [sys.executable, "-m", "dan_core.cli", "app", "--source", str(media_dir / VIDEO), "--model", str(model_path),
           "--landmarker", str(landmarker_path), "--backend", "cpu", "--record", str(out), "--exit-after", "2",
           "--screenshot", str(shot), "--settings-file", str(tmp_path / "s.ini")]
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert len(out.read_text().splitlines()) > 5
    from PySide6.QtGui import QImage

    img = QImage(str(shot))
    assert img.width() >= 800 and img.height() >= 500


def test_settings_dialog_applies_and_rebuilds_the_pipeline(qtbot, make_window, store, media_dir, tmp_path):
    from app.widgets import SettingsDialog

    w = make_window()
    with qtbot.waitSignal(w.engine.pipeline_ready, timeout=TIMEOUT):
        w.start(str(media_dir / VIDEO))
    dialog = SettingsDialog(w.prefs.current, w)
    qtbot.addWidget(dialog)
    dialog.max_faces.setValue(2)
    dialog.smoothing.setValue(0.3)
    dialog.record_dir.edit.setText(str(tmp_path / "elsewhere"))
    new = dialog.result_settings()
    assert (new.max_faces, new.smoothing, new.record_dir) == (2, 0.3, str(tmp_path / "elsewhere"))
    with qtbot.waitSignal(w.engine.pipeline_ready, timeout=TIMEOUT):
        w.settings.apply(new)
    store.sync()
    assert int(store.value("max_faces")) == 2 and store.value("record_dir") == str(tmp_path / "elsewhere")
    wait_for_face(qtbot, w)


@pytest.mark.slow
def test_cli_without_camera_shows_the_message_and_exits_one(tmp_path, landmarker_path, model_path):
    from dan_core.pipeline.sources import list_cameras

    if list_cameras():
        pytest.skip("this machine has a camera")
    shot = tmp_path / "nocam.png"
    cmd = [sys.executable, "-m", "dan_core.cli", "app", "--model", str(model_path), "--landmarker", str(landmarker_path),
           "--exit-after", "0.5", "--screenshot", str(shot), "--settings-file", str(tmp_path / "s.ini")]
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 1 and "No camera found" in proc.stderr
    assert shot.is_file()

"""Event markers in the desktop app (pytest-qt, offscreen): keys 1-9, M, LSL markers, lines on the timeline, the sidecar.

Real MediaPipe and ONNX Runtime on the real face video; liblsl on loopback (tests/lsl_api.cfg).
"""

from __future__ import annotations

import json
import time
import uuid

import pytest

pytest.importorskip("pytestqt")

from PySide6.QtCore import QSettings, Qt  # noqa: E402
from PySide6.QtTest import QTest  # noqa: E402

from app.state import AppSettings, marker_label, parse_marker_labels  # noqa: E402
from app.widgets import SettingsDialog  # noqa: E402
from app.window import MainWindow  # noqa: E402
from dan_core.pipeline.events import events_path, read_events  # noqa: E402
from dan_core.pipeline.timeline import sidecar_path  # noqa: E402

VIDEO = "pexels_WolfgangLanger_emotions.mp4"
TIMEOUT = 60_000


pytestmark = pytest.mark.usefixtures("offline_landmarker")  # conftest: no download, no user cache


@pytest.fixture
def window(qtbot, tmp_path, landmarker_path):
    from dan_core.paths import MODELS_DIR

    model = sorted(MODELS_DIR.glob("*.onnx"))
    if not model:
        pytest.skip("no shipped model")
    settings = AppSettings(model=str(model[0]), landmarker=str(landmarker_path), backend="cpu", record_dir=str(tmp_path / "rec"),
                           marker_labels="1=stimulus on; 2 = stimulus off; x=ignored")
    w = MainWindow(store=QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat), settings=settings, cameras=[])
    qtbot.addWidget(w)
    w.resize(1000, 700)
    w.show()
    yield w
    w.shutdown()


def _recording(qtbot, w, media_dir, out):
    w.start(str(media_dir / VIDEO))
    qtbot.waitUntil(lambda: w.last_packet is not None and w.last_packet.result is not None and len(w.last_packet.result.faces) > 0,
                    timeout=TIMEOUT)
    with qtbot.waitSignal(w.engine.recording_changed, timeout=TIMEOUT):
        w.recording.start_recording(out)
    qtbot.waitUntil(lambda: (w.last_packet.recording_rows or 0) >= 3, timeout=TIMEOUT)


def test_marker_labels_setting():
    assert parse_marker_labels("1=stimulus on; 2 = stimulus  off; x=no; 10=no; 3=") == {1: "stimulus on", 2: "stimulus off"}
    assert marker_label("1=stimulus on", 1) == "1 = stimulus on" and marker_label("1=stimulus on", 4) == "4"


def test_keys_and_the_m_dialog_write_markers_at_once(qtbot, window, media_dir, tmp_path):
    w = window
    QTest.keyClick(w, Qt.Key.Key_1)  # not recording: nothing is written, the status bar says why
    assert "while recording" in w.statusBar().currentMessage()
    out = tmp_path / "rec.csv"
    _recording(qtbot, w, media_dir, out)
    shown = w.last_packet
    with qtbot.waitSignal(w.engine.marker_added, timeout=TIMEOUT) as got:
        QTest.keyClick(w, Qt.Key.Key_1)
    event = got.args[0]
    assert (event.label, event.source) == ("1 = stimulus on", "key")
    assert event.time_s >= shown.media_time_s and event.frame >= shown.result.index  # the frame on screen at the key press
    assert read_events(events_path(out))[0].label == "1 = stimulus on"  # on disk while still recording
    with qtbot.waitSignal(w.engine.marker_added, timeout=TIMEOUT) as got:
        QTest.keyClick(w, Qt.Key.Key_7)  # no label set: the digit itself
    assert got.args[0].label == "7"
    QTest.keyClick(w, Qt.Key.Key_M)
    dialog = w.markers.marker_dialog
    assert dialog is not None and dialog.isVisible()
    dialog.setTextValue("participant laughed")
    with qtbot.waitSignal(w.engine.marker_added, timeout=TIMEOUT) as got:
        dialog.accept()
    assert got.args[0].label == "participant laughed"
    qtbot.waitUntil(lambda: len(w.timeline.marker_labels()) == 3, timeout=TIMEOUT)  # lines on the live timeline
    assert set(w.timeline.marker_labels()) == {"1 = stimulus on", "7", "participant laughed"}
    with qtbot.waitSignal(w.engine.recording_changed, timeout=TIMEOUT):
        QTest.keyClick(w, Qt.Key.Key_R)
    events = read_events(events_path(out))
    assert [e.label for e in events] == ["1 = stimulus on", "7", "participant laughed"]
    frames = [e.frame for e in events]
    assert frames == sorted(frames)
    meta = json.loads(sidecar_path(out).read_text())
    assert meta["events"]["count"] == 3 and meta["events"]["labels"]["7"] == 1


def test_settings_dialog_edits_marker_labels(qtbot):
    dialog = SettingsDialog(AppSettings(marker_labels="1=a"))
    qtbot.addWidget(dialog)
    assert dialog.marker_labels.text() == "1=a"
    dialog.marker_labels.setText("1=stimulus on; 2=rest")
    assert parse_marker_labels(dialog.result_settings().marker_labels) == {1: "stimulus on", 2: "rest"}


def test_lsl_markers_in_the_app_land_on_the_frame_shown(qtbot, window, media_dir, tmp_path):
    pylsl = pytest.importorskip("pylsl")
    w = window
    stim = pylsl.StreamOutlet(pylsl.StreamInfo("stimuli", "Markers", 1, pylsl.IRREGULAR_RATE, pylsl.cf_string,
                                               f"stim-{uuid.uuid4().hex[:8]}"))
    w.engine.enable_study(lsl=True, lsl_markers=True)
    out = tmp_path / "lsl.csv"
    _recording(qtbot, w, media_dir, out)
    deadline = time.monotonic() + 20
    while not stim.have_consumers() and time.monotonic() < deadline:
        qtbot.wait(50)
    assert stim.have_consumers()
    from dan_core.pipeline.lsl import source_ids

    found = pylsl.resolve_byprop("source_id", source_ids()[0], timeout=10.0)  # the app's own outlet: dan-fer@<host>
    assert found and found[0].nominal_srate() == pytest.approx(23.976, abs=0.01)  # the source's frame rate
    faces = pylsl.StreamInlet(found[0])
    faces.open_stream(timeout=10.0)
    sample, _ = faces.pull_sample(timeout=10.0)
    assert sample is not None and len(sample) == 5 + len(w.overlays.class_names) + 3 and sample[0] >= 1  # face_id, box, classes, pose
    before = w.last_packet.media_time_s
    with qtbot.waitSignal(w.engine.marker_added, timeout=TIMEOUT) as got:
        stim.push_sample(["stimulus on"])
    event = got.args[0]
    assert event.source == "lsl" and event.label == "stimulus on"
    assert before - 0.05 <= event.time_s <= before + 0.5  # the frame leaving the source then, not a later one
    with qtbot.waitSignal(w.engine.recording_changed, timeout=TIMEOUT):
        w.recording.stop_recording()
    assert read_events(events_path(out))[0].source == "lsl"

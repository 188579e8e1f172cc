"""The app's pure logic (app.state): no QApplication, no Qt import."""

from __future__ import annotations

import subprocess
import sys
import threading
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest

from app.state import (
    AppSettings,
    MaxGapMeter,
    TimelineBuffer,
    face_at,
    format_elapsed,
    pick_default_face,
    recording_paths,
    snapshot_path,
)
from dan_core.pipeline.handoff import LatestSlot, RateMeter
from dan_core.pipeline.heatmap import heatmap_label, heatmap_modes, next_heatmap_mode, valid_heatmap_mode

ROOT = Path(__file__).resolve().parent.parent


class FakeClock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_state_and_command_modules_do_not_import_qt():
    code = (
        "import sys, app.state, app.command, dan_core.cli, argparse\n"
        "p = argparse.ArgumentParser(); app.command.add_arguments(p)\n"
        "bad = [m for m in sys.modules if m.startswith(('PySide6', 'pyqtgraph'))]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


@pytest.mark.parametrize("heads", [1, 4])
def test_heatmap_cycle_visits_every_mode_and_wraps(heads):
    modes = heatmap_modes(heads)
    assert modes[0] == "off" and modes[1] == "fused" and modes[-1] == "all"
    assert len(modes) == heads + 3
    seen, mode = [], "off"
    for _ in range(len(modes)):
        seen.append(mode)
        mode = next_heatmap_mode(mode, heads)
    assert seen == list(modes) and mode == "off"


def test_heatmap_mode_unknown_or_out_of_range():
    assert next_heatmap_mode("head7", 4) == "off"
    assert valid_heatmap_mode("head7", 4) == "fused"
    assert valid_heatmap_mode("head2", 4) == "head2"
    assert heatmap_label("head3") == "Head 3" and heatmap_label("all") == "All heads"


def test_settings_round_trip_through_string_values():
    s = AppSettings(model="/m/x.onnx", backend="cpu", smoothing=0.3, max_faces=2, heatmap="head2", opacity=0.7,
                    record_dir="/tmp/rec", record_video=True, landmarks=True, timeline_seconds=30)
    stored = {k: str(v) for k, v in s.to_mapping().items()}  # QSettings' ini format hands back strings
    assert AppSettings.from_mapping(stored) == s


def test_settings_ignore_garbage_and_clamp():
    s = AppSettings.from_mapping({"backend": "tpu", "smoothing": "7", "max_faces": "zero", "opacity": "-1",
                                  "heatmap": "rainbow", "record_video": "maybe", "timeline_seconds": "1"})
    d = AppSettings()
    assert s.backend == "auto" and s.smoothing == 0.95 and s.max_faces == d.max_faces and s.opacity == 0.0
    assert s.heatmap == "fused" and s.record_video is False and s.timeline_seconds == 5
    assert AppSettings.from_mapping({}) == d
    assert AppSettings.from_mapping(lambda key: None) == d  # a callable store (QSettings.value)


def test_rate_meter_counts_over_its_window():
    clock = FakeClock()
    rate = RateMeter(window_s=1.0, clock=clock)
    assert rate.rate() == 0.0
    for _ in range(26):  # 25 intervals of 40 ms
        rate.tick()
        clock.t += 0.04
    assert rate.rate() == pytest.approx(25.0, rel=0.05)
    clock.t += 5.0
    assert rate.rate() == 0.0  # old ticks fall out of the window


def test_max_gap_meter_reports_lateness_beyond_interval():
    clock = FakeClock()
    gaps = MaxGapMeter(0.005, clock=clock)
    for dt in (0.005, 0.006, 0.060, 0.005):
        gaps.beat()
        clock.t += dt
    gaps.beat()
    assert gaps.max_block_ms() == pytest.approx(55.0)


def test_latest_slot_newest_wins_and_wakes_waiters():
    slot: LatestSlot[int] = LatestSlot()
    assert slot.put(1) is True
    assert slot.put(2) is False and slot.dropped == 1
    assert slot.take() == 2 and slot.take() is None
    threading.Timer(0.05, slot.put, args=(3,)).start()
    assert slot.take(timeout=2.0) == 3


def test_face_at_picks_smallest_containing_box():
    boxes = [(1, (0, 0, 200, 200)), (2, (50, 50, 40, 40))]
    assert face_at(boxes, 60, 60) == 2
    assert face_at(boxes, 150, 150) == 1
    assert face_at(boxes, 500, 500) is None
    assert face_at(boxes, 205, 100) == 1  # the margin around a box still counts


def test_pick_default_face_keeps_selection_else_largest():
    faces = [(3, (0, 0, 10, 10)), (5, (0, 0, 50, 50))]
    assert pick_default_face(faces, 3) == 3
    assert pick_default_face(faces, None) == 5
    assert pick_default_face(faces, 9) == 5
    assert pick_default_face([], 3) == 3


def test_timeline_buffer_keeps_last_seconds_of_one_face():
    tl = TimelineBuffer(num_classes=3, seconds=2.0)
    for i in range(50):
        tl.add(i * 0.1, 7, np.array([0.1, 0.2, 0.7]))
    t, p = tl.series()
    assert p.shape == (len(t), 3) and t[-1] == 0.0 and t[0] >= -2.0 and len(t) == 21
    tl.add(5.0, 8, np.array([1.0, 0.0, 0.0]))  # another face: start over
    assert len(tl) == 1 and tl.face_id == 8


def test_recording_names_and_elapsed():
    csv, mp4 = recording_paths("/rec", datetime(2026, 1, 2, 3, 4, 5))
    assert csv == Path("/rec/dan-fer-20260102-030405.csv") and mp4.suffix == ".mp4"
    assert snapshot_path("/rec", datetime(2026, 1, 2, 3, 4, 5, 678000)).name == "dan-fer-snapshot-20260102-030405-678.png"
    assert format_elapsed(65) == "01:05" and format_elapsed(3725) == "1:02:05"


def test_app_without_display_says_what_to_do(monkeypatch):
    from app.main import check_display
    from dan_core.errors import DanFerError

    monkeypatch.setattr(sys, "platform", "linux")
    for var in ("QT_QPA_PLATFORM", "DISPLAY", "WAYLAND_DISPLAY"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(DanFerError, match="offscreen"):
        check_display()
    monkeypatch.setenv("QT_QPA_PLATFORM", "offscreen")
    check_display()

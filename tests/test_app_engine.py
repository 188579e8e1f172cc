"""The engine's thread logic, run directly in the test's thread (no window, no event loop)."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from app.engine import Engine
from app.messages import AppError
from dan_core.errors import DanFerError
from dan_core.pipeline.handoff import LatestSlot
from dan_core.pipeline.playback import Capture, Captured, SourceEnd
from dan_core.pipeline.sources import Frame


class FakeFile:
    """A video-file-like source of synthetic frames."""

    is_live = False

    def __init__(self, n: int = 10, fps: float = 50.0) -> None:
        self.n, self.fps, self.frame_count = n, fps, n
        self._start = 0
        self.closed = False

    def __iter__(self):
        start, self._start = self._start, 0
        for i in range(start, self.n):
            yield Frame(np.full((48, 64, 3), i, np.uint8), i, i / self.fps)

    def seek(self, time_s: float) -> None:
        self._start = min(int(round(time_s * self.fps)), self.n)

    def close(self) -> None:
        self.closed = True


def drain(slot: LatestSlot, until: float) -> list:
    items = []
    while time.monotonic() < until:
        item = slot.take(timeout=0.01)
        if item is not None:
            items.append(item)
            if isinstance(item, SourceEnd):
                break
    return items


def test_capture_plays_a_file_in_real_time_then_ends():
    src, slot = FakeFile(n=10, fps=50.0), LatestSlot()
    cap = Capture(src, slot)
    t0 = time.monotonic()
    cap.start()
    items = drain(slot, t0 + 5.0)
    elapsed = time.monotonic() - t0
    cap.stop()
    frames = [i for i in items if isinstance(i, Captured)]
    assert isinstance(items[-1], SourceEnd) and not items[-1].lost and items[-1].error is None
    assert elapsed >= 0.15  # 10 frames at 50 fps: paced, not as fast as decoding allows
    assert [f.frame.index for f in frames] == sorted(f.frame.index for f in frames) and frames[-1].frame.index == 9
    assert src.closed


def test_capture_newest_frame_wins_when_nobody_takes():
    src, slot = FakeFile(n=20, fps=200.0), LatestSlot()
    cap = Capture(src, slot)
    cap.start()
    time.sleep(0.5)
    item = slot.take()  # the end marker waits for the last frame to be taken first
    assert isinstance(item, Captured) and item.frame.index == 19 and slot.dropped >= 10
    assert isinstance(slot.take(timeout=2.0), SourceEnd)
    cap.stop()


def test_capture_pause_and_seek_delivers_one_frame():
    src, slot = FakeFile(n=100, fps=50.0), LatestSlot()
    cap = Capture(src, slot)
    cap.set_paused(True)
    cap.start()
    assert slot.take(timeout=0.3) is None  # paused from the start: nothing
    cap.seek(1.0)
    item = slot.take(timeout=2.0)
    assert item.frame.index == 50 and item.generation == cap.generation
    assert slot.take(timeout=0.3) is None  # still paused after that one frame
    cap.stop()


def test_capture_reports_a_failing_live_source():
    class Broken:
        is_live, fps, frame_count = True, 30.0, None

        def __iter__(self):
            yield Frame(np.zeros((8, 8, 3), np.uint8), 0, 0.0)
            raise DanFerError("device unplugged")

        def close(self):
            pass

    slot = LatestSlot()
    cap = Capture(Broken(), slot)
    cap.start()
    first = slot.take(timeout=2.0)
    end = slot.take(timeout=2.0)
    cap.stop()
    assert isinstance(first, Captured) and isinstance(end, SourceEnd) and end.lost and "unplugged" in end.error


def test_engine_run_without_a_model_shows_raw_frames_and_stops_cooperatively():
    """Engine.run in this thread: a pipeline that cannot be built, a source that plays; stop from a timer."""

    def make_pipeline(config):
        raise DanFerError("model not found: nope.onnx")

    engine = Engine(open_source=lambda spec: FakeFile(n=30, fps=100.0), make_pipeline=make_pipeline)
    errors: list[AppError] = []
    packets = []
    engine.failed.connect(errors.append)
    engine.frame_ready.connect(lambda p: packets.append(engine.out.take() or p))
    engine.configure(object())
    engine.open_source("fake.mp4")
    stopper = threading.Timer(1.0, engine.stop)
    stopper.start()
    t0 = time.monotonic()
    engine.run()  # returns once stop() is called
    assert time.monotonic() - t0 < 3.0
    assert [e.kind for e in errors] == ["model"]
    assert packets and all(p.result is None for p in packets)  # the picture still plays without a model
    assert packets[-1].image.shape == (48, 64, 3) and packets[-1].display.shape[2] == 4


@pytest.mark.parametrize("spec, kind", [("0", "camera"), ("missing.mp4", "source")])
def test_engine_reports_sources_that_cannot_open(spec, kind):
    def open_source(s):
        raise DanFerError(f"cannot open {s}")

    engine = Engine(open_source=open_source, make_pipeline=lambda c: None)
    errors: list[AppError] = []
    engine.failed.connect(errors.append)
    engine.open_source(spec)
    threading.Timer(0.3, engine.stop).start()
    engine.run()
    assert [(e.kind, e.message) for e in errors] == [(kind, f"cannot open {spec}")]

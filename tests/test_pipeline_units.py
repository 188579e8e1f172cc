"""Pipeline pieces without MediaPipe or a model: alignment, tracking, smoothing, drawing helpers."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from dan_core.data.templates import GENERIC_TEMPLATE, dataset_template_path, parse_template
from dan_core.errors import DanFerError
from dan_core.pipeline.align import Aligner, similarity_transform, source_size_for, template_for, to_model_input
from dan_core.pipeline.boxes import selected_or_largest
from dan_core.pipeline.draw import class_colors, draw_results, warp_to_frame
from dan_core.pipeline.frames import as_bgr
from dan_core.pipeline.heatmap import heatmap_image, parse_heatmap
from dan_core.pipeline.landmarks import five_points
from dan_core.pipeline.tracking import Tracker

FERPLUS_TEMPLATE_PATH = dataset_template_path("ferplus")


def _similarity(scale: float, angle_deg: float, tx: float, ty: float) -> np.ndarray:
    a = np.deg2rad(angle_deg)
    return np.array([[scale * np.cos(a), -scale * np.sin(a), tx], [scale * np.sin(a), scale * np.cos(a), ty]], np.float32)


def _apply(m: np.ndarray, pts: np.ndarray) -> np.ndarray:
    return pts @ m[:, :2].T + m[:, 2]


# ----------------------------------------------------------------------------- alignment
@pytest.mark.parametrize("scale,angle,tx,ty", [(1.0, 0.0, 0.0, 0.0), (2.5, 17.0, -40.0, 12.0), (0.4, -30.0, 100.0, 7.5)])
def test_similarity_transform_recovers_a_known_transform(scale, angle, tx, ty):
    src = np.array([[10, 20], [50, 22], [30, 40], [15, 60], [48, 61]], np.float32)
    m = _similarity(scale, angle, tx, ty)
    est = similarity_transform(src, _apply(m, src))
    np.testing.assert_allclose(est, m, atol=1e-3)


def test_similarity_transform_never_reflects():
    src = np.array([[0, 0], [10, 0], [5, 5], [1, 10], [9, 10]], np.float32)
    mirrored = src * [-1, 1]
    m = similarity_transform(src, mirrored)
    assert np.linalg.det(m[:, :2]) > 0


def test_degenerate_landmarks_are_a_clear_error():
    with pytest.raises(DanFerError, match="degenerate"):
        similarity_transform(np.ones((5, 2)), np.zeros((5, 2)))


def test_known_landmarks_give_the_known_crop():
    """Dots drawn where a rotated, scaled face's five points are land on the template in the crop."""
    size = 112
    template = parse_template(FERPLUS_TEMPLATE_PATH.read_text())
    face_to_frame = _similarity(2.2, 25.0, 180.0, 60.0)  # crop pixels -> frame pixels
    points = _apply(face_to_frame, template * size)  # where the five points are in the frame
    frame = np.zeros((480, 640, 3), np.uint8)
    colors = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0), (0, 255, 255)]
    for (x, y), c in zip(points, colors, strict=True):
        cv2.circle(frame, (int(round(x)), int(round(y))), 5, c, -1)
    m, crop = Aligner(template, size)(frame, points)
    assert crop.shape == (size, size, 3) and crop.dtype == np.uint8
    np.testing.assert_allclose(_apply(m, points), template * size, atol=1e-2)
    for (x, y), c in zip(template * size, colors, strict=True):
        # the dot's colour sits at the template position (the dot was radius 5 in a 2.2x larger frame)
        np.testing.assert_array_equal(crop[int(round(y)), int(round(x))], c)


def test_five_points_picks_eye_centres_nose_and_mouth_corners():
    lm = np.zeros((478, 2), np.float32)
    lm[33], lm[133] = (10, 20), (20, 20)
    lm[362], lm[263] = (40, 20), (50, 22)
    lm[1], lm[61], lm[291] = (30, 35), (18, 50), (42, 50)
    np.testing.assert_allclose(five_points(lm), [[15, 20], [45, 21], [30, 35], [18, 50], [42, 50]])


def test_fer_template_asset_is_derived_and_symmetric():
    data = json.loads(FERPLUS_TEMPLATE_PATH.read_text())
    pts = np.asarray(data["points"])
    assert pts.shape == (5, 2) and data["images_used"] >= 100
    assert pts[0, 0] < 0.5 < pts[1, 0] and pts[0, 1] < pts[2, 1] < pts[3, 1]  # eyes, then nose, then mouth
    np.testing.assert_allclose(pts[0, 0] + pts[1, 0], 1.0, atol=1e-3)


def test_template_resolution_order():
    meta_pts = [[0.3, 0.4], [0.7, 0.4], [0.5, 0.6], [0.35, 0.75], [0.65, 0.75]]
    t, src = template_for({"template": json.dumps(meta_pts), "train_dataset": "ferplus"}, 112)
    assert src == "model metadata"
    np.testing.assert_allclose(t, meta_pts)
    # pixels are accepted too (DANConfig.template may be stored in input pixels)
    t_px, _ = template_for({"template": json.dumps((np.array(meta_pts) * 112).tolist())}, 112)
    np.testing.assert_allclose(t_px, meta_pts, atol=1e-6)
    _, src = template_for({"train_dataset": "ferplus"}, 112)
    assert src == FERPLUS_TEMPLATE_PATH.name == "ferplus_template.json"
    # the 48 px bottleneck is a fact the dataset declares (or the model's metadata), not a guess from its name
    assert source_size_for({"train_dataset": "ferplus"}) == source_size_for({"train_dataset": "fer2013"}) == 48
    assert source_size_for({"train_dataset": "rafdb"}) is None and source_size_for({"train_dataset": "myferset"}) is None
    assert source_size_for({"train_dataset": "rafdb", "native_size": "64"}) == 64
    t, src = template_for({"train_dataset": "rafdb"}, 100)
    assert src.startswith("generic")
    np.testing.assert_allclose(t, GENERIC_TEMPLATE)
    with pytest.raises(DanFerError, match="5 \\[x, y\\]"):
        parse_template("[[0, 0]]")


def test_model_input_colour_and_range():
    crop = np.zeros((8, 8, 3), np.uint8)
    crop[..., 2] = 255  # pure red in BGR
    rgb = to_model_input([crop], "rgb")
    assert rgb.shape == (1, 3, 8, 8) and rgb.dtype == np.float32
    np.testing.assert_allclose(rgb[0, :, 0, 0], [1.0, 0.0, 0.0])
    grey = to_model_input([crop, crop], "gray")
    assert grey.shape == (2, 3, 8, 8)
    np.testing.assert_allclose(grey[0, 0], grey[0, 1])
    np.testing.assert_allclose(grey[0, 1], grey[0, 2])
    assert 0.2 < grey[0, 0, 0, 0] < 0.4  # luma of red


@pytest.mark.parametrize("shape", [(20, 30), (20, 30, 1), (20, 30, 3), (20, 30, 4)])
def test_frames_of_any_channel_count_become_bgr(shape):
    out = as_bgr(np.full(shape, 7, np.uint8))
    assert out.shape == (20, 30, 3) and out.dtype == np.uint8
    with pytest.raises(DanFerError):
        as_bgr(np.zeros((20, 30, 2), np.uint8))


# ----------------------------------------------------------------------------- tracking
def test_crossing_faces_keep_their_ids():
    """Two faces move towards each other, overlap, and move apart: each keeps its ID."""
    tracker = Tracker(max_missed=5)
    seen: dict[int, list[float]] = {}
    for step in range(40):
        a = (20 + 10 * step, 100, 80, 80)  # left to right
        b = (420 - 10 * step, 110, 80, 80)  # right to left, slightly lower
        boxes = [a, b] if step % 2 else [b, a]  # detection order must not matter
        ids = tracker.update(boxes)
        for box, fid in zip(boxes, ids, strict=True):
            seen.setdefault(fid, []).append(box[0])
    assert sorted(seen) == [1, 2]
    xs1, xs2 = np.array(seen[1]), np.array(seen[2])
    assert (np.diff(xs1) > 0).all() or (np.diff(xs1) < 0).all()  # each ID follows one monotonic path
    assert (np.diff(xs2) > 0).all() or (np.diff(xs2) < 0).all()


def test_ids_are_never_reused_and_tracks_end_after_max_missed():
    tracker = Tracker(max_missed=3)
    assert tracker.update([(0, 0, 50, 50)]) == [1]
    for _ in range(3):  # missed 3 frames: still alive
        assert tracker.update([]) == []
    assert tracker.update([(2, 1, 50, 50)]) == [1]
    for _ in range(4):  # missed 4 > 3 frames: ended
        tracker.update([])
    assert tracker.tracks == []
    assert tracker.update([(2, 1, 50, 50)]) == [2]  # same place, new ID
    tracker.reset()
    assert tracker.update([(2, 1, 50, 50), (300, 0, 50, 50)]) == [3, 4]


def test_far_away_face_is_a_new_track():
    tracker = Tracker()
    assert tracker.update([(0, 0, 40, 40)]) == [1]
    assert tracker.update([(400, 300, 40, 40)]) == [2]


def test_smoothing_is_an_exponential_moving_average_per_track():
    tracker = Tracker()
    a, b = tracker.update([(0, 0, 50, 50), (200, 0, 50, 50)])
    p0, p1 = np.array([1.0, 0.0], np.float32), np.array([0.0, 1.0], np.float32)
    np.testing.assert_allclose(tracker.smooth(a, p0, 0.6), p0)  # a new track starts at its first value
    np.testing.assert_allclose(tracker.smooth(b, p1, 0.6), p1)
    tracker.update([(1, 0, 50, 50), (201, 0, 50, 50)])
    np.testing.assert_allclose(tracker.smooth(a, p1, 0.6), [0.6, 0.4], atol=1e-6)
    np.testing.assert_allclose(tracker.smooth(a, p1, 0.6), [0.36, 0.64], atol=1e-6)
    np.testing.assert_allclose(tracker.smooth(b, p1, 0.6), p1)  # other track unaffected
    np.testing.assert_allclose(tracker.smooth(a, p0, 0.0), p0)  # 0 = off


# ----------------------------------------------------------------------------- drawing
def test_class_colors_are_stable_and_distinct():
    names = ("neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt")
    c1, c2 = class_colors(names), class_colors(reversed(names))
    assert c1 == c2 and len(set(c1.values())) == len(names)
    assert class_colors(["Zebra"]) == class_colors(["Zebra"])


def test_heatmap_warps_back_onto_the_face():
    size = 112
    m = _similarity(0.5, 0.0, -50.0, -20.0)  # frame -> crop: the crop covers frame x 100..324, y 40..264
    values = np.ones((size, size), np.float32)
    (x0, y0, x1, y1), vmap = warp_to_frame(values, m, (640, 480))
    assert (x0, y0, x1, y1) == (100, 40, 324, 264)
    assert vmap[112, 112] > 0.99 and vmap.shape == (224, 224)
    assert warp_to_frame(values, _similarity(1.0, 0.0, 1000.0, 0.0), (640, 480)) is None  # crop off-frame
    assert heatmap_image(np.random.rand(4, 4, 4).astype(np.float32), 64).shape == (64, 64, 3)


def test_draw_results_every_heatmap_mode():
    from dan_core.pipeline.core import FaceResult, FrameResult

    names = ("neutral", "happiness", "surprise")
    frame = np.full((360, 640, 3), 90, np.uint8)
    m = _similarity(112 / 150, 10.0, -200.0, -60.0)
    face = FaceResult(7, (250, 80, 150, 170), np.full((478, 2), 300, np.float32), np.array([0.1, 0.7, 0.2], np.float32),
                      "happiness", 0.7, np.random.rand(4, 4, 4).astype(np.float32), m, np.zeros((112, 112, 3), np.uint8))
    result = FrameResult(0, 0.0, (640, 360), [face])
    for mode in ("fused", "off", "all", "head1", "head4"):
        out = draw_results(frame, result, names, heatmap=mode, landmarks=True, selected_id=7)
        assert out.shape == frame.shape and not np.shares_memory(out, frame)
        assert (out != frame).any()
    np.testing.assert_array_equal(frame, 90)  # the input is untouched
    with pytest.raises(DanFerError, match="head1..head4"):
        parse_heatmap("head5", 4)
    # no faces, grey and BGRA frames
    empty = FrameResult(0, 0.0, (640, 360), [])
    assert draw_results(frame[..., 0], empty, names).shape == (360, 640, 3)
    assert draw_results(np.dstack([frame, frame[..., :1]]), empty, names).shape == (360, 640, 3)


def test_the_followed_face_is_the_selected_one_else_the_largest():
    faces = [(1, (0, 0, 10, 10)), (2, (50, 50, 30, 20)), (3, (5, 5, 12, 12))]
    assert selected_or_largest(faces, 3) == 3  # still on screen: kept, however small
    assert selected_or_largest(faces, 9) == 2 and selected_or_largest(faces, None) == 2  # gone or none: the largest
    assert selected_or_largest([], 3) is None


def test_the_commands_options_come_from_one_dataclass():
    """analyze, batch and the app's settings share AnalysisOptions' defaults; a batch says where it differs."""
    import argparse

    from app.main import add_arguments as app_arguments
    from app.state import AppSettings
    from dan_core.commands import analyze, batch
    from dan_core.pipeline.options import AnalysisOptions, options_from

    def parse(add, argv):
        parser = argparse.ArgumentParser()
        add(parser)
        return parser.parse_args(argv)

    assert options_from(parse(analyze.add_arguments, ["v.mp4", "--csv", "t.csv"])) == AnalysisOptions()
    in_batch = options_from(parse(batch.add_arguments, ["v.mp4", "--out-dir", "d"]))
    assert in_batch.pipeline.backend == "cpu" and in_batch.pipeline.max_faces == AnalysisOptions().pipeline.max_faces
    assert options_from({"threads": 1, "overlap": False}).pipeline.threads == 1  # analyze_video's plain mapping
    app = parse(app_arguments, [])
    assert (app.backend, app.heatmap, app.opacity, app.landmarks) == (None, None, None, None)  # the saved setting applies
    s, o = AppSettings(), AnalysisOptions()
    assert (s.backend, s.max_faces, s.heatmap, s.opacity, s.landmarks) == (
        o.pipeline.backend, o.pipeline.max_faces, o.draw.heatmap, o.draw.opacity, o.draw.landmarks)


def test_a_failing_output_leaves_the_frame_to_the_others_or_ends_the_step():
    """FrameStep: outputs run in order; with on_failure a failing one is taken out (and may take others out), the rest
    still get the frame; without it, its DanFerError ends the step."""
    from dan_core.pipeline.step import AnalysedFrame, FrameStep

    class Output:
        def __init__(self, name, log, fail=False):
            self.name, self.log, self.fail = name, log, fail

        def frame(self, item):
            if self.fail:
                raise DanFerError(f"{self.name} full")
            self.log.append(self.name)

        def close(self):
            self.log.append(f"close {self.name}")

    log, failures = [], []
    rows, stream, view, video = Output("rows", log, fail=True), Output("stream", log), Output("view", log), Output("video", log)

    def on_failure(output, error):
        failures.append(str(error))
        step.use([stream, view])  # the recording stops: its video goes with its rows

    step = FrameStep([rows, stream, None, view, video], on_failure=on_failure)
    item = AnalysedFrame(np.zeros((4, 4, 3), np.uint8), None, 0.0)
    step.frame(item)
    assert failures == ["rows full"] and log == ["stream", "view"]  # the video was taken out before its turn
    step.close()
    assert log[-2:] == ["close stream", "close view"]
    with pytest.raises(DanFerError, match="rows full"):
        FrameStep([Output("rows", [], fail=True)]).frame(item)


def test_the_live_analysis_hands_back_one_typed_update(tmp_path):
    from dan_core.pipeline.live import LiveAnalysis
    from dan_core.pipeline.playback import Captured, SourceEnd
    from dan_core.pipeline.render import RenderOptions
    from dan_core.pipeline.sources import Frame

    live = LiveAnalysis()
    live.start()
    try:
        assert live.take(RenderOptions(), generation=0).empty  # nothing came
        live.frames.put(Captured(Frame(np.zeros((48, 64, 3), np.uint8), 0, 0.0), 1.0, 0))
        shown = live.take(RenderOptions(), generation=0, timeout=2.0).shown
        assert shown.result is None and shown.view.image.shape == (48, 64, 3)  # no model: the picture as it is
        live.frames.put(SourceEnd(0, lost=False))
        update = live.take(RenderOptions(), generation=0, timeout=2.0)
        assert update.source_end == SourceEnd(0, lost=False) and update.shown is None and not update.empty
        with pytest.raises(DanFerError, match="no model"):
            live.start_recording(tmp_path / "r.csv")
        assert live.recording_rows is None and live.stop_recording() is None and not (tmp_path / "r.csv").exists()
    finally:
        live.stop()
        live.close()

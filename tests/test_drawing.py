"""What the annotated pictures draw: text and its shadow, the probability bars' panel (bugs found by looking at them)."""

from __future__ import annotations

import numpy as np
import pytest

from dan_core.classes import FERPLUS
from dan_core.pipeline.draw import _text, class_colors, draw_prob_bars

BACKGROUND = np.array((60, 120, 60), np.uint8)


def _extent(mask: np.ndarray) -> tuple[int, int, int, int]:
    """(left, right, top, bottom) of the True pixels."""
    cols, rows = np.flatnonzero(mask.any(0)), np.flatnonzero(mask.any(1))
    return cols.min(), cols.max(), rows.min(), rows.max()


@pytest.mark.parametrize("scale", [0.41, 0.55, 0.8, 1.1])
def test_the_text_shadow_is_no_wider_than_the_label(scale):
    """Bug: the shadow was the text drawn 2 pixels thicker, which stuck out past its last letter ("neutrall",
    "happinesss"); it is now the text itself, one pixel down and right."""
    for text in ("neutral", "happiness", "#1 neutral 87%", "100%"):
        img = np.full((200, 900, 3), BACKGROUND, np.uint8)
        _text(img, text, (20, 100), scale, (255, 255, 255))
        drawn = (img != BACKGROUND).any(axis=2)
        letters = img.astype(int).sum(axis=2) > int(BACKGROUND.sum()) + 60
        (dl, dr, _, _), (ll, lr, _, _) = _extent(drawn), _extent(letters)
        assert dr - lr <= 1 and ll - dl <= 1, (text, scale)


@pytest.mark.parametrize("scale", [0.75, 1.0, 1.25, 1.5, 2.0])
def test_the_percentages_stay_inside_their_panel(scale):
    """Bug: "100%" ended on the panel's edge, its shadow beyond it; now every letter keeps a margin inside."""
    img = np.full((720, 1280, 3), BACKGROUND, np.uint8)
    probs = np.zeros(len(FERPLUS), np.float32)
    probs[0] = 1.0
    x, y, w, h = draw_prob_bars(img, probs, FERPLUS, class_colors(FERPLUS), (100, 50, 150, 150), scale=scale)
    letters = img.astype(int).sum(axis=2) > 600  # the light grey text (235, 235, 235)
    left, right, top, bottom = _extent(letters)
    assert x + 2 <= left and right <= x + w - 3 and y <= top and bottom <= y + h - 1


@pytest.mark.parametrize("height", [360, 720, 1080])
def test_the_face_label_stays_inside_its_box(height):
    """Bug: at 360 lines the label's "%" (and its shadow) stuck out past the right end of its dark box."""
    from types import SimpleNamespace as NS

    from dan_core.pipeline.draw import draw_results

    s = height / 360
    img = np.full((height, int(height * 16 / 9), 3), 230, np.uint8)
    probs = np.zeros(len(FERPLUS), np.float32)
    probs[0] = 1.0
    box = (int(100 * s), int(60 * s), int(120 * s), int(140 * s))
    face = NS(face_id=1, box=box, landmarks=np.zeros((478, 2), np.float32), probs=probs, dominant="neutral", confidence=1.0,
              attention=np.zeros((4, 7, 7), np.float32), matrix=np.eye(2, 3, dtype=np.float32),
              crop=np.zeros((112, 112, 3), np.uint8))
    out = draw_results(img, NS(faces=[face], frame_size=(img.shape[1], height)), FERPLUS, heatmap="off", bars=False)
    band = out[max(box[1] - int(30 * s), 0):box[1] - int(4 * s)].astype(int).sum(axis=2)  # the label's rows, above the box
    box_cols = np.flatnonzero((band < 3 * 230).any(0))  # the darkened box, and everything drawn in it
    shadow_cols = np.flatnonzero((band < 150).any(0))  # the shadow: nearly black
    assert box_cols.min() < shadow_cols.min() and shadow_cols.max() < box_cols.max() - 1
    darkened = np.flatnonzero(((band > 200) & (band < 330)).any(0))  # the box itself: the background at 40%
    assert darkened.max() == box_cols.max()  # nothing drawn right of the box

"""Label orders of every supported dataset: the one place they are written down.

Each tuple is the index order of the dataset's own label files. Names are lower-case
and shared across datasets where they mean the same expression, so a model's
``class_names`` can be compared with any dataset's.
"""

from __future__ import annotations

# RAF-DB basic: list_patition_label.txt uses 1..7 in this order (official DAN order too).
RAFDB = ("surprise", "fear", "disgust", "happiness", "sadness", "anger", "neutral")
# AffectNet manual annotations: expression 0..7 (8..10 are none/uncertain/non-face).
AFFECTNET8 = ("neutral", "happiness", "sadness", "surprise", "fear", "disgust", "anger", "contempt")
AFFECTNET7 = AFFECTNET8[:7]
# FER2013 Kaggle csv: emotion 0..6.
FER2013 = ("anger", "disgust", "fear", "happiness", "sadness", "surprise", "neutral")
# Microsoft FER+ fer2013new.csv vote columns, in file order (then unknown, NF).
FERPLUS = ("neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt")
# SFEW 2.0 folder names (Angry, Disgust, Fear, Happy, Neutral, Sad, Surprise) mapped to our names.
SFEW = ("anger", "disgust", "fear", "happiness", "neutral", "sadness", "surprise")
SFEW_FOLDERS = {
    "angry": "anger", "disgust": "disgust", "fear": "fear", "happy": "happiness",
    "neutral": "neutral", "sad": "sadness", "surprise": "surprise",
}

BY_DATASET: dict[str, tuple[str, ...]] = {
    "rafdb": RAFDB,
    "affectnet7": AFFECTNET7,
    "affectnet8": AFFECTNET8,
    "fer2013": FER2013,
    "ferplus": FERPLUS,
    "sfew": SFEW,
}

"""What every supported dataset declares about its faces: the one place it is written down.

Label orders: each tuple is the index order of the dataset's own label files. Names are
lower-case and shared across datasets where they mean the same expression, so a model's
``class_names`` can be compared with any dataset's.

``DATASETS`` adds each dataset's other facts (``DatasetInfo``): the native size of its faces and
the alignment template derived from them. A model trained on a dataset carries these facts in
its config and its exported metadata, so the app never guesses them from the dataset's name.
A new reader in data/readers.py adds its entry here.
"""

from __future__ import annotations

from dataclasses import dataclass

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



@dataclass(frozen=True)
class DatasetInfo:
    """Facts about one dataset's faces, declared next to its label order."""

    class_names: tuple[str, ...]
    # pixel size of the dataset's faces when they are tiny (FER2013: 48 x 48, upsampled for training);
    # the live pipeline sends aligned crops through the same bottleneck so they look alike
    native_size: int | None = None
    # alignment template derived from the dataset's own faces (assets/<file>, see pipeline/derive_template.py);
    # None: the generic ArcFace template
    template_file: str | None = None


DATASETS: dict[str, DatasetInfo] = {
    "rafdb": DatasetInfo(RAFDB),
    "affectnet7": DatasetInfo(AFFECTNET7),
    "affectnet8": DatasetInfo(AFFECTNET8),
    "fer2013": DatasetInfo(FER2013, native_size=48, template_file="ferplus_template.json"),
    "ferplus": DatasetInfo(FERPLUS, native_size=48, template_file="ferplus_template.json"),  # FER2013's faces, FER+ labels
    "sfew": DatasetInfo(SFEW),
}

BY_DATASET: dict[str, tuple[str, ...]] = {name: info.class_names for name, info in DATASETS.items()}


def dataset_info(name: str) -> DatasetInfo | None:
    """The facts of a dataset by its reader's name (``train_dataset`` of a model); None when unknown."""
    return DATASETS.get(str(name or "").lower())

"""Dataset readers: one small function per source, each returning ``FaceRecords`` (data/dataset.py).

Decoded uint8 pixels in memory (FER2013 / FER+, packed npz) or image file paths (RAF-DB,
AffectNet, SFEW, class folders), the labels, optional soft targets (FER+ vote distributions) and
the class names, which travel with every dataset. ``READERS`` names them for ``--dataset``; what
each dataset declares about its faces is its ``DatasetInfo`` in ``dan_core.classes.DATASETS``.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from dan_core import classes
from dan_core.data.dataset import FaceRecords
from dan_core.errors import DanFerError
from dan_core.paths import IMAGE_SUFFIXES

SPLITS = ("train", "val", "test")


def _split_name(split: str) -> str:
    if split not in SPLITS:
        raise DanFerError(f"unknown split {split!r}: use one of {', '.join(SPLITS)}")
    return split


def _need(path: Path, what: str) -> Path:
    if not path.exists():
        raise DanFerError(f"{what} not found: {path}")
    return path


# ---------------------------------------------------------------------------- readers
def read_rafdb(root: str | Path, split: str = "train") -> FaceRecords:
    """RAF-DB basic: EmoLabel/list_patition_label.txt + Image/aligned/<name>_aligned.jpg."""
    root = Path(root)
    label_file = _need(root / "EmoLabel" / "list_patition_label.txt", "RAF-DB label file")
    prefix = {"train": "train_", "val": "test_", "test": "test_"}[_split_name(split)]
    paths, labels = [], []
    for line in label_file.read_text().split("\n"):
        if not line.strip():
            continue
        name, label = line.split()
        if not name.startswith(prefix):
            continue
        stem = Path(name).stem
        paths.append(root / "Image" / "aligned" / f"{stem}_aligned.jpg")
        labels.append(int(label) - 1)  # file labels are 1..7
    return FaceRecords(labels=np.asarray(labels, np.int64), class_names=classes.RAFDB, paths=paths, source="rafdb")


def read_affectnet(root: str | Path, split: str = "train", num_classes: int = 8) -> FaceRecords:
    """AffectNet manual annotations: Manually_Annotated_file_lists/{training,validation}.csv.

    Columns: subDirectory_filePath, face_x, face_y, face_width, face_height, facial_landmarks,
    expression, valence, arousal. Images under Manually_Annotated_Images/ (or the root).
    Expressions >= num_classes (contempt for 7 classes, none, uncertain, non-face) are dropped.
    AffectNet's validation set is the usual test set, so val and test both read it.
    """
    root = Path(root)
    name = "training.csv" if _split_name(split) == "train" else "validation.csv"
    candidates = [root / "Manually_Annotated_file_lists" / name, root / name]
    table = next((p for p in candidates if p.is_file()), None)
    if table is None:
        raise DanFerError(f"AffectNet list not found: looked for {', '.join(map(str, candidates))}")
    image_root = root / "Manually_Annotated_Images"
    image_root = image_root if image_root.is_dir() else root
    paths, labels = [], []
    with table.open(newline="") as f:
        for row in csv.DictReader(f):
            label = int(row["expression"])
            if label < num_classes:
                paths.append(image_root / row["subDirectory_filePath"])
                labels.append(label)
    names = classes.AFFECTNET8 if num_classes == 8 else classes.AFFECTNET7
    return FaceRecords(labels=np.asarray(labels, np.int64), class_names=names, paths=paths, source=f"affectnet{num_classes}")


def read_class_folders(root: str | Path, class_names: Sequence[str] | None = None,
                       folder_to_class: dict[str, str] | None = None, source: str = "folder") -> FaceRecords:
    """Generic class-per-folder reader: root/<class>/*.jpg. Class order is sorted folder names
    unless ``class_names`` is given."""
    root = Path(root)
    if not root.is_dir():
        raise DanFerError(f"image folder not found: {root}")
    folders = sorted(p for p in root.iterdir() if p.is_dir())
    mapping = folder_to_class or {}
    names = tuple(class_names) if class_names else tuple(mapping.get(p.name.lower(), p.name) for p in folders)
    paths, labels = [], []
    for folder in folders:
        name = mapping.get(folder.name.lower(), folder.name)
        if name not in names:
            raise DanFerError(f"folder {folder.name!r} is not one of the classes {names}")
        for file in sorted(folder.iterdir()):
            if file.suffix.lower() in IMAGE_SUFFIXES:
                paths.append(file)
                labels.append(names.index(name))
    if not paths:
        raise DanFerError(f"no images found in class folders under {root}")
    return FaceRecords(labels=np.asarray(labels, np.int64), class_names=names, paths=paths, source=source)


def read_sfew(root: str | Path, split: str = "train") -> FaceRecords:
    """SFEW 2.0: Train/ and Val/ each with Angry, Disgust, Fear, Happy, Neutral, Sad, Surprise."""
    root = Path(root)
    sub = {"train": "Train", "val": "Val", "test": "Val"}[_split_name(split)]
    folder = next((p for p in (root / sub, root / sub.lower()) if p.is_dir()), root)
    return read_class_folders(folder, classes.SFEW, classes.SFEW_FOLDERS, source="sfew")


_FER_USAGE = {"train": "Training", "val": "PublicTest", "test": "PrivateTest"}


def read_fer2013_csv(path: str | Path, split: str = "train") -> FaceRecords:
    """Kaggle fer2013.csv (emotion, pixels, Usage). ``ids`` is the 0-based data row."""
    path = Path(path)
    path = path / "fer2013.csv" if path.is_dir() else path
    usage = _FER_USAGE[_split_name(split)]
    pixels, labels, ids = [], [], []
    with _need(path, "fer2013.csv").open(newline="") as f:
        for row_index, row in enumerate(csv.DictReader(f)):
            if row["Usage"] == usage:
                pixels.append(np.asarray(row["pixels"].split(), np.uint8).reshape(48, 48))
                labels.append(int(row["emotion"]))
                ids.append(row_index)
    if not pixels:
        raise DanFerError(f"no {usage} rows in {path}")
    return FaceRecords(labels=np.asarray(labels, np.int64), class_names=classes.FER2013,
                       pixels=np.stack(pixels), source="fer2013", ids=np.asarray(ids, np.int64))


def read_fer2013_npz(path: str | Path, split: str = "train") -> FaceRecords:
    """The packed npz of ../shared/data/fer2013: images uint8 (N,48,48), labels, index.

    ``path`` is an npz file, or a folder with fer2013_train.npz / fer2013_publictest.npz, or with
    the unpacked fer2013_device_pack.npz (keys train_images, publictest_images, ...).
    """
    path = Path(path)
    prefix = ""
    if path.is_dir():
        name = {"train": "fer2013_train.npz", "val": "fer2013_publictest.npz", "test": "fer2013_privatetest.npz"}
        pack = path / "fer2013_device_pack.npz"  # `xz -dk fer2013_device_pack.npz.xz`: both splits in one file
        if not (path / name[_split_name(split)]).is_file() and pack.is_file():
            prefix = {"train": "train_", "val": "publictest_", "test": "privatetest_"}[split]
            path = pack
        else:
            path = path / name[split]
    try:
        with np.load(_need(path, "FER2013 npz")) as z:
            images, labels, index = z[f"{prefix}images"], z[f"{prefix}labels"], z[f"{prefix}index"]
    except (KeyError, ValueError, OSError) as exc:
        raise DanFerError(f"cannot read {path}: {exc}") from exc
    return FaceRecords(labels=labels.astype(np.int64), class_names=classes.FER2013, pixels=images,
                       source="fer2013", ids=index.astype(np.int64))


def read_fer2013(path: str | Path, split: str = "train") -> FaceRecords:
    """FER2013 from fer2013.csv or the packed npz files (whichever ``path`` holds)."""
    path = Path(path)
    if path.suffix == ".csv" or (path.is_dir() and (path / "fer2013.csv").is_file()):
        return read_fer2013_csv(path, split)
    return read_fer2013_npz(path, split)


def ferplus_targets(votes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """FER+ reference 'majority' protocol on (N, 10) votes (8 emotions, unknown, NF).

    Votes of 1 are removed; the winner needs more than half of the remaining votes; images
    whose winner is unknown/not-a-face, or with no majority, are dropped.
    Returns (keep mask, majority labels, vote-distribution targets over the 8 emotions).
    """
    v = votes.astype(np.float64).copy()
    v[v <= 1.0] = 0.0  # outlier removal
    total = v.sum(axis=1)
    winner = v.argmax(axis=1)
    top = v.max(axis=1)
    keep = (top > 0.5 * total) & (winner < 8) & (total > 0)
    emo = v[:, :8]
    emo_total = emo.sum(axis=1, keepdims=True)
    dist = np.divide(emo, emo_total, out=np.zeros_like(emo), where=emo_total > 0)
    return keep, winner.astype(np.int64), dist.astype(np.float32)


def read_ferplus_votes(path: str | Path) -> np.ndarray:
    """fer2013new.csv → (rows, 10) votes, one row per fer2013.csv data row."""
    with _need(Path(path), "FER+ vote table").open(newline="") as f:
        reader = csv.reader(f)
        header = next(reader)
        if [h.lower() for h in header[2:10]] != list(classes.FERPLUS):
            raise DanFerError(f"{path} is not a FER+ vote table (header {header[:4]}...)")
        return np.asarray([[float(x) for x in row[2:12]] for row in reader], np.float32)


def read_ferplus(root: str | Path, split: str = "train") -> FaceRecords:
    """FER+: Microsoft's vote table joined by row to FER2013 pixels (csv or packed npz).

    ``root`` holds fer2013new.csv (or ferplus_votes.csv) and fer2013.csv or the npz files.
    Labels follow the majority protocol; soft targets are the vote distributions.
    """
    root = Path(root)
    vote_file = next((root / n for n in ("fer2013new.csv", "ferplus_votes.csv") if (root / n).is_file()), None)
    if vote_file is None:
        raise DanFerError(f"no FER+ vote table (fer2013new.csv or ferplus_votes.csv) in {root}")
    votes = read_ferplus_votes(vote_file)
    fer = read_fer2013(root, split)
    assert fer.ids is not None
    if fer.ids.max() >= len(votes):
        raise DanFerError(f"{vote_file} has {len(votes)} rows but FER2013 row {fer.ids.max()} is needed")
    keep, labels, dist = ferplus_targets(votes[fer.ids])
    idx = np.flatnonzero(keep)
    return FaceRecords(labels=labels[idx], class_names=classes.FERPLUS, pixels=fer.pixels[idx],
                       soft_targets=dist[idx], source="ferplus", ids=fer.ids[idx])


READERS = {
    "rafdb": read_rafdb,
    "affectnet8": lambda root, split="train": read_affectnet(root, split, 8),
    "affectnet7": lambda root, split="train": read_affectnet(root, split, 7),
    "sfew": read_sfew,
    "fer2013": read_fer2013,
    "ferplus": read_ferplus,
    "folder": lambda root, split="train": read_class_folders(root),
}


def read_dataset(name: str, root: str | Path, split: str = "train") -> FaceRecords:
    if name not in READERS:
        raise DanFerError(f"unknown dataset {name!r}: choose from {', '.join(READERS)}")
    return READERS[name](root, split)

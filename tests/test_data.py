"""Dataset readers, each on a tiny fixture written in that source's real layout."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from dan_core import classes
from dan_core.data.dataset import FaceDataset, collate_batch
from dan_core.data.readers import ferplus_targets, read_dataset, read_ferplus
from dan_core.errors import DanFerError


def _jpg(path: Path, value: int, size: int = 20) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((size, size, 3), value, np.uint8)).save(path)


def test_rafdb_basic(tmp_path: Path) -> None:
    lines = ["train_00001.jpg 4", "train_00002.jpg 1", "test_0001.jpg 7", "test_0002.jpg 3"]
    (tmp_path / "EmoLabel").mkdir()
    (tmp_path / "EmoLabel" / "list_patition_label.txt").write_text("\n".join(lines) + "\n")
    for i, line in enumerate(lines):
        _jpg(tmp_path / "Image" / "aligned" / line.split()[0].replace(".jpg", "_aligned.jpg"), 10 * i)
    train = read_dataset("rafdb", tmp_path, "train")
    test = read_dataset("rafdb", tmp_path, "test")
    assert train.class_names == classes.RAFDB
    assert [train.class_names[i] for i in train.labels] == ["happiness", "surprise"]
    assert [test.class_names[i] for i in test.labels] == ["neutral", "disgust"]
    image, label, target = FaceDataset(test, load_size=32)[0]
    assert image.shape == (3, 32, 32) and image.dtype == torch.uint8 and int(label) == 6 and target[6] == 1


def test_affectnet_7_and_8(tmp_path: Path) -> None:
    lists = tmp_path / "Manually_Annotated_file_lists"
    lists.mkdir()
    header = ["subDirectory_filePath", "face_x", "face_y", "face_width", "face_height", "facial_landmarks",
              "expression", "valence", "arousal"]
    rows = [("1/a.jpg", 0), ("1/b.jpg", 7), ("2/c.jpg", 3), ("2/d.jpg", 9), ("2/e.jpg", 10)]
    for name in ("training.csv", "validation.csv"):
        with (lists / name).open("w", newline="") as f:
            w = csv.writer(f)
            w.writerow(header)
            for path, expr in rows:
                w.writerow([path, 0, 0, 20, 20, "1;2", expr, 0.1, 0.2])
    for path, _ in rows:
        _jpg(tmp_path / "Manually_Annotated_Images" / path, 100)
    eight = read_dataset("affectnet8", tmp_path, "train")
    seven = read_dataset("affectnet7", tmp_path, "val")
    assert [eight.class_names[i] for i in eight.labels] == ["neutral", "contempt", "surprise"]
    assert [seven.class_names[i] for i in seven.labels] == ["neutral", "surprise"]
    assert eight.paths is not None and eight.paths[0].is_file()


def test_sfew_class_folders(tmp_path: Path) -> None:
    for split in ("Train", "Val"):
        for folder in ("Angry", "Happy", "Neutral"):
            _jpg(tmp_path / split / folder / f"{folder}_1.png", 50)
    recs = read_dataset("sfew", tmp_path, "val")
    assert recs.class_names == classes.SFEW
    assert sorted(recs.class_names[i] for i in recs.labels) == ["anger", "happiness", "neutral"]


def test_generic_folder_reader(tmp_path: Path) -> None:
    _jpg(tmp_path / "smile" / "1.jpg", 1)
    _jpg(tmp_path / "smile" / "2.jpg", 2)
    _jpg(tmp_path / "frown" / "1.jpg", 3)
    (tmp_path / "frown" / "notes.txt").write_text("not an image")
    recs = read_dataset("folder", tmp_path)
    assert recs.class_names == ("frown", "smile")
    assert recs.labels.tolist() == [0, 1, 1]


def _write_fer_csv(path: Path, rows: list[tuple[int, str]]) -> None:
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["emotion", "pixels", "Usage"])
        for i, (emotion, usage) in enumerate(rows):
            w.writerow([emotion, " ".join(str((i * 7 + k) % 256) for k in range(48 * 48)), usage])


def test_fer2013_csv(tmp_path: Path) -> None:
    _write_fer_csv(tmp_path / "fer2013.csv", [(3, "Training"), (0, "Training"), (6, "PublicTest"), (5, "PrivateTest")])
    train = read_dataset("fer2013", tmp_path, "train")
    val = read_dataset("fer2013", tmp_path, "val")
    test = read_dataset("fer2013", tmp_path / "fer2013.csv", "test")
    assert [train.class_names[i] for i in train.labels] == ["happiness", "anger"]
    assert val.ids is not None and val.ids.tolist() == [2]
    assert test.labels.tolist() == [5]
    assert train.pixels is not None and train.pixels.shape == (2, 48, 48) and train.pixels[1, 0, 0] == 7


def _write_votes(path: Path, votes: list[list[int]], usages: list[str]) -> None:
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["Usage", "Image name", *classes.FERPLUS, "unknown", "NF"])
        for i, (v, usage) in enumerate(zip(votes, usages)):
            w.writerow([usage, f"fer{i:07d}.png", *v])


def test_ferplus_majority_protocol() -> None:
    votes = np.array([
        [6, 2, 1, 1, 0, 0, 0, 0, 0, 0],  # ones removed: 6/8 neutral -> kept, neutral
        [4, 4, 1, 1, 0, 0, 0, 0, 0, 0],  # 4/8 is not more than half -> dropped
        [0, 0, 0, 0, 0, 0, 0, 0, 7, 3],  # unknown wins -> dropped
        [0, 0, 0, 0, 0, 0, 0, 0, 0, 10],  # not a face -> dropped
        [1, 1, 1, 1, 1, 1, 1, 3, 0, 0],  # only contempt survives outlier removal -> contempt
        [5, 4, 1, 0, 0, 0, 0, 0, 0, 0],  # 5/9 > half -> neutral
    ])
    keep, labels, dist = ferplus_targets(votes)
    assert keep.tolist() == [True, False, False, False, True, True]
    assert labels[[0, 4, 5]].tolist() == [0, 7, 0]
    assert np.allclose(dist[0], [0.75, 0.25, 0, 0, 0, 0, 0, 0])
    assert np.allclose(dist[5], [5 / 9, 4 / 9, 0, 0, 0, 0, 0, 0])


def test_ferplus_joined_by_row_to_csv_and_npz(tmp_path: Path) -> None:
    usages = ["Training", "Training", "Training", "PublicTest"]
    _write_fer_csv(tmp_path / "fer2013.csv", [(0, u) for u in usages])
    _write_votes(tmp_path / "fer2013new.csv",
                 [[0, 10, 0, 0, 0, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0, 0, 0, 0, 10], [0, 0, 8, 2, 0, 0, 0, 0, 0, 0],
                  [0, 0, 0, 0, 9, 1, 0, 0, 0, 0]], usages)
    train = read_ferplus(tmp_path, "train")
    assert train.class_names == classes.FERPLUS
    assert train.ids is not None and train.ids.tolist() == [0, 2]
    assert [train.class_names[i] for i in train.labels] == ["happiness", "surprise"]
    assert train.soft_targets is not None and np.allclose(train.soft_targets[1], [0, 0, 0.8, 0.2, 0, 0, 0, 0])
    # the same rows from the packed npz layout of ../shared/data/fer2013
    npz_dir = tmp_path / "npz"
    npz_dir.mkdir()
    fer = read_dataset("fer2013", tmp_path, "train")
    np.savez(npz_dir / "fer2013_train.npz", images=fer.pixels, labels=fer.labels.astype(np.int8),
             index=fer.ids.astype(np.int32))
    (npz_dir / "ferplus_votes.csv").write_bytes((tmp_path / "fer2013new.csv").read_bytes())
    again = read_ferplus(npz_dir, "train")
    assert again.labels.tolist() == train.labels.tolist()
    assert again.pixels is not None and np.array_equal(again.pixels, train.pixels)


def test_batched_fetch_keeps_grey_as_one_channel(tmp_path: Path) -> None:
    _write_fer_csv(tmp_path / "fer2013.csv", [(1, "Training")] * 3)
    ds = FaceDataset(read_dataset("fer2013", tmp_path, "train"))
    images, labels, targets = collate_batch(ds.__getitems__([0, 2]))
    assert images.shape == (2, 1, 48, 48) and labels.tolist() == [1, 1] and targets.shape == (2, 7)
    assert ds[0][0].shape == (3, 48, 48)


def test_missing_and_unknown_inputs_raise_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(DanFerError, match="RAF-DB label file not found"):
        read_dataset("rafdb", tmp_path)
    with pytest.raises(DanFerError, match="unknown dataset"):
        read_dataset("imagenet", tmp_path)
    with pytest.raises(DanFerError, match="no FER\\+ vote table"):
        read_dataset("ferplus", tmp_path)


def test_shared_fer_pack_matches_its_sources_md(fer_dir: Path) -> None:
    train = read_dataset("fer2013", fer_dir, "train")
    assert len(train) == 28558
    assert train.class_counts().tolist() == [3969, 435, 4079, 7186, 4796, 3161, 4932]
    val = read_ferplus(fer_dir, "val")
    assert 3000 < len(val) < 3579 and val.class_names == classes.FERPLUS


def test_fer_device_pack_layout(tmp_path: Path) -> None:
    images = np.arange(3 * 48 * 48, dtype=np.uint8).reshape(3, 48, 48)
    np.savez(tmp_path / "fer2013_device_pack.npz", train_images=images[:2], train_labels=np.int8([3, 0]),
             train_index=np.int32([0, 1]), publictest_images=images[2:], publictest_labels=np.int8([6]),
             publictest_index=np.int32([28709]))
    train = read_dataset("fer2013", tmp_path, "train")
    val = read_dataset("fer2013", tmp_path, "val")
    assert train.labels.tolist() == [3, 0] and val.ids is not None and val.ids.tolist() == [28709]
    assert val.pixels is not None and np.array_equal(val.pixels[0], images[2])


def test_every_reader_declares_its_dataset_facts():
    """A new reader in data/readers.py adds its DatasetInfo in classes.py (label order, native size, template)."""
    from dan_core.data.readers import READERS

    assert set(READERS) - {"folder"} == set(classes.DATASETS)
    assert classes.BY_DATASET["ferplus"] == classes.FERPLUS


def test_exported_metadata_carries_the_dataset_facts():
    from dan_core.model.dan import DAN, DANConfig
    from dan_core.training.export import metadata

    meta = metadata(DAN(DANConfig(num_heads=1, train_dataset="ferplus")))
    assert meta["native_size"] == "48" and len(json.loads(meta["template"])) == 5
    meta = metadata(DAN(DANConfig(num_heads=1, class_names=classes.RAFDB, train_dataset="rafdb")))
    assert "native_size" not in meta and "template" not in meta

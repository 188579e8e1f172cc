"""Evaluate a .pt checkpoint or an exported .onnx model on a dataset split.

Dataset labels are matched to the model's classes by name, so a model trained with one
label order (e.g. AffectNet-8) can be scored on another dataset with the same classes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from torch.utils.data import DataLoader
from tqdm import tqdm

from dan_core.data.augment import to_float
from dan_core.data.dataset import FaceDataset, FaceRecords, collate_batch
from dan_core.data.readers import read_dataset
from dan_core.errors import DanFerError
from dan_core.training.metrics import EvalResult, head_statistics, summarize


def label_map(model_classes: tuple[str, ...], data_classes: tuple[str, ...]) -> np.ndarray:
    missing = [c for c in data_classes if c not in model_classes]
    if missing:
        raise DanFerError(f"the model has no class for {missing} (model classes: {', '.join(model_classes)})")
    return np.asarray([model_classes.index(c) for c in data_classes], np.int64)


@dataclass
class Predictions:
    """A model's outputs over a set of faces: probabilities (N, C), attention maps (N, K, h, w) and its classes."""

    probs: np.ndarray
    attention: np.ndarray
    class_names: tuple[str, ...]


def predict(model_path: str | Path, records: FaceRecords, *, tta_flip: bool = False, batch_size: int = 128,
            show: bool = True) -> Predictions:
    """Class probabilities and attention maps for every record, faces prepared as ``dan-fer eval`` always has
    (bilinear enlargement to the model's size; grey models get the grey face in all three channels)."""
    from dan_core.pipeline.backends import make_backend, model_info

    path = Path(model_path)
    backend = make_backend(path, "auto")
    names, size, color, heads = model_info(backend.meta)
    gray = color == "gray"
    loader = DataLoader(FaceDataset(records, size), batch_size=batch_size, shuffle=False, collate_fn=collate_batch)
    probs, maps = [], []
    for images, _, _ in tqdm(loader, desc=f"eval {path.name}", disable=not show, leave=False):
        x = to_float(images, size, gray=gray)
        p, a = backend.run(x.numpy())
        if tta_flip:
            p = (p + backend.run(x.flip(-1).numpy())[0]) / 2
        probs.append(p)
        maps.append(a)
    if not probs:
        return Predictions(np.zeros((0, len(names)), np.float32), np.zeros((0, heads, 1, 1), np.float32), names)
    return Predictions(np.concatenate(probs), np.concatenate(maps), names)


def evaluate_model(model_path: str | Path, dataset: str, data: str | Path, split: str = "val", *, tta_flip: bool = False,
                   batch_size: int = 128, limit: int = 0, show: bool = True) -> EvalResult:
    """Accuracy, per-class recall, calibration and what the attention heads look at (``HeadStats``)."""
    records = read_dataset(dataset, data, split)
    if limit:
        records = records.subset(np.arange(min(limit, len(records))))
    pred = predict(model_path, records, tta_flip=tta_flip, batch_size=batch_size, show=show)
    labels = label_map(pred.class_names, records.class_names)[records.labels]
    result = summarize(pred.probs, labels, pred.class_names)
    if len(pred.probs):
        result.heads = head_statistics(pred.attention).to_dict()
    return result

"""Evaluate a .pt checkpoint or an exported .onnx model on a dataset split.

Dataset labels are matched to the model's classes by name, so a model trained with one
label order (e.g. AffectNet-8) can be scored on another dataset with the same classes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from dan_core.data.augment import to_float
from dan_core.data.dataset import FaceDataset, FaceRecords, collate_batch
from dan_core.data.readers import read_dataset
from dan_core.errors import DanFerError
from dan_core.training.metrics import EvalResult, summarize


def _label_map(model_classes: tuple[str, ...], data_classes: tuple[str, ...]) -> np.ndarray:
    missing = [c for c in data_classes if c not in model_classes]
    if missing:
        raise DanFerError(f"the model has no class for {missing} (model classes: {', '.join(model_classes)})")
    return np.asarray([model_classes.index(c) for c in data_classes], np.int64)


def predict_probs(model_path: str | Path, records: FaceRecords, *, tta_flip: bool = False, batch_size: int = 128,
                  show: bool = True) -> tuple[np.ndarray, tuple[str, ...]]:
    """Class probabilities (N, C_model) for every record, and the model's class names."""
    from dan_core.pipeline.backends import make_backend, model_info

    path = Path(model_path)
    backend = make_backend(path, "auto")
    names, size, color, _ = model_info(backend.meta)
    gray = color == "gray"

    def run(x: torch.Tensor) -> np.ndarray:
        return backend.run(x.numpy())[0]

    loader = DataLoader(FaceDataset(records, size), batch_size=batch_size, shuffle=False, collate_fn=collate_batch)
    out = []
    for images, _, _ in tqdm(loader, desc=f"eval {path.name}", disable=not show, leave=False):
        x = to_float(images, size, gray=gray)
        p = run(x)
        if tta_flip:
            p = (p + run(x.flip(-1))) / 2
        out.append(p)
    return np.concatenate(out) if out else np.zeros((0, len(names)), np.float32), names


def evaluate_model(model_path: str | Path, dataset: str, data: str | Path, split: str = "val", *, tta_flip: bool = False,
                   batch_size: int = 128, limit: int = 0, show: bool = True) -> EvalResult:
    records = read_dataset(dataset, data, split)
    if limit:
        records = records.subset(np.arange(min(limit, len(records))))
    probs, names = predict_probs(model_path, records, tta_flip=tta_flip, batch_size=batch_size, show=show)
    labels = _label_map(names, records.class_names)[records.labels]
    return summarize(probs, labels, names)

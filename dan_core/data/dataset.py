"""The one dataset type every reader feeds: ``FaceRecords`` (what a reader returns) and ``FaceDataset``
(the torch Dataset over them). Only numpy and torch are needed, plus Pillow for image files.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from dan_core.errors import DanFerError


@dataclass
class FaceRecords:
    labels: np.ndarray  # (N,) int64 class indices into class_names
    class_names: tuple[str, ...]
    pixels: np.ndarray | None = None  # (N, H, W) or (N, H, W, 3) uint8, when decoded in memory
    paths: list[Path] | None = None  # image files, when read lazily
    soft_targets: np.ndarray | None = None  # (N, C) float32 probability targets
    source: str = ""
    ids: np.ndarray | None = field(default=None)  # e.g. fer2013 row index

    def __post_init__(self) -> None:
        n = len(self.labels)
        if (self.pixels is None) == (self.paths is None):
            raise ValueError("FaceRecords needs exactly one of pixels or paths")
        if self.pixels is not None and len(self.pixels) != n or self.paths is not None and len(self.paths) != n:
            raise ValueError("pixels/paths and labels differ in length")

    def __len__(self) -> int:
        return len(self.labels)

    def class_counts(self) -> np.ndarray:
        return np.bincount(self.labels, minlength=len(self.class_names))

    def subset(self, idx: np.ndarray) -> FaceRecords:
        return FaceRecords(
            labels=self.labels[idx], class_names=self.class_names,
            pixels=None if self.pixels is None else self.pixels[idx],
            paths=None if self.paths is None else [self.paths[i] for i in idx],
            soft_targets=None if self.soft_targets is None else self.soft_targets[idx],
            source=self.source, ids=None if self.ids is None else self.ids[idx],
        )


def load_image(path: Path, size: int) -> np.ndarray:
    """Decode an image file to (size, size, 3) uint8 RGB (Pillow, imported only here)."""
    try:
        from PIL import Image
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise DanFerError("reading image files needs Pillow: pip install pillow") from exc
    try:
        with Image.open(path) as im:
            im = im.convert("RGB")
            if im.size != (size, size):
                im = im.resize((size, size), Image.BILINEAR)
            return np.array(im, np.uint8)  # a writable copy
    except OSError as exc:
        raise DanFerError(f"cannot read image {path}: {exc}") from exc


class FaceDataset(Dataset):
    """Yields (image uint8 (3, S, S), label, soft target (C,)) from any FaceRecords.

    In-memory pixels stay at their stored size (48x48 for FER) and are resized on the
    training device by the batched augmentation; files are decoded at ``load_size``.
    """

    def __init__(self, records: FaceRecords, load_size: int = 112) -> None:
        self.records = records
        self.load_size = load_size
        self.class_names = records.class_names
        n, c = len(records), len(records.class_names)
        if records.soft_targets is not None:
            self.targets = torch.from_numpy(records.soft_targets.astype(np.float32))
        else:
            self.targets = F.one_hot(torch.from_numpy(records.labels), c).float() if n else torch.zeros(0, c)
        self.labels = torch.from_numpy(records.labels)
        self.pixels = None if records.pixels is None else torch.from_numpy(np.ascontiguousarray(records.pixels))

    def __len__(self) -> int:
        return len(self.records)

    def image(self, i: int) -> torch.Tensor:
        """(3, H, W) uint8; grey pixels are repeated into three channels."""
        if self.pixels is not None:
            img = self.pixels[i]
        else:
            assert self.records.paths is not None
            img = torch.from_numpy(load_image(self.records.paths[i], self.load_size))
        if img.dim() == 2:
            return img.unsqueeze(0).expand(3, -1, -1)  # grey -> (3, H, W)
        return img.permute(2, 0, 1)  # (H, W, 3) -> (3, H, W)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.image(i), self.labels[i], self.targets[i]

    def __getitems__(self, indices: list[int]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Batched fetch used by DataLoader: in-memory grey pixels stay one channel."""
        idx = torch.as_tensor(indices, dtype=torch.long)
        if self.pixels is not None and self.pixels.dim() == 3:
            images = self.pixels[idx].unsqueeze(1)  # (B, 1, H, W)
        else:
            images = torch.stack([self.image(i) for i in indices])  # (B, 3, H, W)
        return images, self.labels[idx], self.targets[idx]


def collate_batch(batch: tuple[torch.Tensor, torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """FaceDataset.__getitems__ already returns a batch."""
    return batch

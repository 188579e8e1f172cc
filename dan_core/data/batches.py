"""Where training batches come from: the selection split, class priors, samplers, and the
device-resident batches that replace the DataLoader when a whole dataset fits on the GPU.

Imports only torch and numpy.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import torch
from torch.utils.data import DistributedSampler, RandomSampler, Sampler, WeightedRandomSampler

from dan_core.data.dataset import FaceDataset, FaceRecords

Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor]  # images uint8 (B, 1|3, h, w), labels (B,), targets (B, C)


def class_prior(records: FaceRecords) -> np.ndarray:
    """(C,) training class frequencies: the mean vote distribution when the dataset has one."""
    if records.soft_targets is not None and len(records):
        prior = records.soft_targets.astype(np.float64).mean(axis=0)
    else:
        prior = records.class_counts().astype(np.float64)
    prior = np.maximum(prior, 1e-6)
    return prior / prior.sum()


def holdout_split(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Stratified (kept indices, held-out indices): ``fraction`` of every class, at least one face each."""
    rng = np.random.default_rng(seed)
    held = []
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        held.append(idx[: max(1, round(fraction * len(idx)))])
    held_idx = np.sort(np.concatenate(held)) if held else np.zeros(0, np.int64)
    return np.setdiff1d(np.arange(len(labels)), held_idx), held_idx


def balanced_weights(records: FaceRecords) -> torch.Tensor:
    """(N,) sampling weight of each face: 1 / (faces of its class)."""
    counts = records.class_counts().astype(np.float64)
    return torch.as_tensor(1.0 / np.maximum(counts, 1)[records.labels], dtype=torch.double)


class DistributedWeightedSampler(Sampler[int]):
    """Class-balanced sampling with replacement, sharded across DDP processes."""

    def __init__(self, weights: torch.Tensor, num_samples: int, rank: int, world: int, seed: int) -> None:
        self.weights, self.rank, self.world, self.seed, self.epoch = weights, rank, world, seed, 0
        self.per_rank = math.ceil(num_samples / world)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        g = torch.Generator().manual_seed(self.seed + self.epoch)
        idx = torch.multinomial(self.weights, self.per_rank * self.world, replacement=True, generator=g)
        return iter(idx[self.rank :: self.world].tolist())

    def __len__(self) -> int:
        return self.per_rank


def make_sampler(records: FaceRecords, balanced: bool, rank: int, world: int, seed: int) -> Sampler[int]:
    if balanced:
        weights = balanced_weights(records)
        if world > 1:
            return DistributedWeightedSampler(weights, len(records), rank, world, seed)
        return WeightedRandomSampler(weights, len(records), replacement=True)
    if world > 1:
        return DistributedSampler(range(len(records)), num_replicas=world, rank=rank, shuffle=True, seed=seed)
    return RandomSampler(range(len(records)))


class DeviceBatches:
    """The whole training set on the device, cut into random batches there: no DataLoader.

    FER+ is 25k faces of 48x48 uint8 (58 MB), so a GPU holds it many times over; each epoch a
    permutation (or a class-balanced draw) is made on the device and batches are gathered by
    indexing. With several processes, rank r takes every world-th index of the same permutation.
    """

    def __init__(self, records: FaceRecords, batch_size: int, device: torch.device, *, balanced: bool = False,
                 rank: int = 0, world: int = 1, seed: int = 0) -> None:
        if records.pixels is None:
            raise ValueError("DeviceBatches needs faces decoded in memory (FER2013 / FER+)")
        ds = FaceDataset(records)
        pixels = ds.pixels
        assert pixels is not None
        images = pixels.unsqueeze(1) if pixels.dim() == 3 else pixels.permute(0, 3, 1, 2)  # (N, 1|3, h, w)
        self.images = images.contiguous().to(device)
        self.labels = ds.labels.to(device)  # (N,)
        self.targets = ds.targets.to(device)  # (N, C)
        self.weights = balanced_weights(records).to(device) if balanced else None
        self.batch_size, self.rank, self.world, self.seed, self.epoch = batch_size, rank, world, seed, 0
        self.device = device

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return max(len(self.labels) // (self.batch_size * self.world), 1)

    def __iter__(self) -> Iterator[Batch]:
        n = len(self.labels)
        g = torch.Generator(device=self.device).manual_seed(self.seed + self.epoch)
        if self.weights is not None:
            order = torch.multinomial(self.weights, n, replacement=True, generator=g)
        else:
            order = torch.randperm(n, device=self.device, generator=g)
        order = order[self.rank :: self.world]
        for i in range(len(self)):
            idx = order[i * self.batch_size : (i + 1) * self.batch_size]
            yield self.images[idx], self.labels[idx], self.targets[idx]

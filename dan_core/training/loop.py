"""One training epoch and evaluation, as plain functions over a ``TrainContext``. Imports only torch, numpy and tqdm.

Total loss = CE (hard labels or FER+ vote distributions) + w_af * affinity + w_pt * partition.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from dan_core.data.augment import augment, to_float
from dan_core.data.batches import DeviceBatches
from dan_core.data.dataset import FaceDataset, FaceRecords, collate_batch
from dan_core.model.dan import DAN
from dan_core.model.losses import AffinityLoss, ClassAwareLoss, PartitionLoss, make_target
from dan_core.training.config import TrainConfig
from dan_core.training.metrics import EvalResult, summarize
from dan_core.training.precision import FLOAT32, Precision


class ModelEma:
    """Exponential moving average of a model's parameters and buffers."""

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.decay = decay
        self.state = {k: v.detach().clone() for k, v in model.state_dict().items()}

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        for k, v in model.state_dict().items():
            if v.is_floating_point():
                self.state[k].lerp_(v.detach(), 1 - self.decay)
            else:
                self.state[k].copy_(v)


@dataclass
class TrainContext:
    """What a training step needs besides its batch; ``train.main`` builds it once per run."""

    model: DAN  # the network: checkpoints, evaluation and the EMA read it
    net: nn.Module  # what trains: ``model`` itself, or wrapped by DistributedDataParallel / torch.compile
    affinity: AffinityLoss
    partition: PartitionLoss
    criterion: ClassAwareLoss
    opt: torch.optim.Optimizer
    sched: torch.optim.lr_scheduler.LRScheduler
    cfg: TrainConfig
    device: torch.device
    precision: Precision  # bfloat16 autocast and channels-last, or float32 (training.precision)
    ema: ModelEma | None = None
    frozen: tuple[nn.Module, ...] = ()  # backbone stages kept fixed (--freeze): they stay in eval mode
    show: bool = True  # progress bars (the main process only)


@dataclass
class EpochStats:
    loss: float
    ce: float
    affinity: float
    partition: float
    train_accuracy: float
    images_per_s: float
    lr: float


def partition_weight(cfg: TrainConfig, epoch: int, step: int, steps_per_epoch: int) -> float:
    """The partition loss's weight at ``step`` of ``epoch``: off for the first half of ``cfg.partition_warmup`` epochs,
    then ramped linearly to its full value over the second half.

    The partition loss rewards heads that differ without bound. From random weights it does so first by scaling the
    attention maps up, which saturates the softmax across heads; the logits' BatchNorm then divides the backbone's
    gradient by that scale and the network stays at the class prior (400 steps and more). Once cross-entropy and the
    affinity loss have shaped the features, turning it on no longer stalls learning."""
    if cfg.partition_warmup <= 0:
        return cfg.partition_weight
    done = (epoch * steps_per_epoch + step) / (cfg.partition_warmup * steps_per_epoch)
    return cfg.partition_weight * min(1.0, max(0.0, 2.0 * done - 1.0))


def train_one_epoch(ctx: TrainContext, loader: DataLoader | DeviceBatches, epoch: int, size: int, *, start_step: int = 0,
                    on_step: Callable[[int], None] | None = None) -> EpochStats:
    """One epoch at input ``size`` (or what is left of it after ``start_step``); ``on_step(step)`` runs after every step."""
    cfg, device, model = ctx.cfg, ctx.device, ctx.net
    model.train()
    for module in ctx.frozen:
        module.eval()
    sums = np.zeros(4)
    correct = seen = 0
    gray = cfg.color == "gray"
    start = time.perf_counter()
    steps = len(loader) if not cfg.max_steps else min(cfg.max_steps, len(loader))
    todo = max(steps - start_step, 0)
    bar = tqdm(loader, total=todo, desc=f"epoch {epoch + 1}/{cfg.epochs} @{size}", disable=not ctx.show, leave=False, position=1)
    for i, (images, labels, soft) in enumerate(bar):
        if i >= todo:
            break
        images = images.to(device, non_blocking=True)
        labels = labels.to(device, non_blocking=True)
        target = make_target(labels, soft.to(device, non_blocking=True), cfg.targets)
        x = ctx.precision.layout(augment(images, size, cfg.augment, gray=gray))
        with ctx.precision.autocast(device):
            out = model(x)
        ce = ctx.criterion(out.logits, target)
        af = ctx.affinity(out.features, labels)
        pt = ctx.partition(out.heads)
        loss = ce + cfg.affinity_weight * af + partition_weight(cfg, epoch, start_step + i, steps) * pt
        ctx.opt.zero_grad(set_to_none=True)
        loss.backward()
        ctx.opt.step()
        ctx.sched.step()
        if ctx.ema is not None:
            ctx.ema.update(ctx.model)
        sums += np.array([loss.item(), ce.item(), af.item(), pt.item()])
        correct += (out.logits.argmax(1) == labels).sum().item()
        seen += labels.numel()
        if ctx.show and i % 10 == 0:
            bar.set_postfix(loss=f"{sums[0] / (i + 1):.3f}", acc=f"{correct / max(seen, 1):.3f}")
        if on_step is not None:
            on_step(start_step + i + 1)
    n = max(todo, 1)
    elapsed = time.perf_counter() - start
    return EpochStats(*(sums / n).tolist(), train_accuracy=correct / max(seen, 1),
                      images_per_s=seen / max(elapsed, 1e-9), lr=ctx.opt.param_groups[0]["lr"])


@torch.inference_mode()
def predict(model: nn.Module, loader: DataLoader, device: torch.device, size: int, gray: bool = False,
            tta_flip: bool = False, show: bool = False, precision: Precision | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities (N, C) and labels (N,) over a loader (optionally flip-averaged), in the training run's ``precision``."""
    model.eval()
    probs, labels = [], []
    prec = precision or FLOAT32
    for images, y, _ in tqdm(loader, desc="eval", disable=not show, leave=False):
        x = prec.layout(to_float(images.to(device), size, gray=gray))
        with prec.autocast(device):
            p = model(x).logits.float().softmax(1)
            if tta_flip:
                p = (p + model(x.flip(-1)).logits.float().softmax(1)) / 2
        probs.append(p.cpu())
        labels.append(y)
    return torch.cat(probs).numpy(), torch.cat(labels).numpy()


def evaluate(model: nn.Module, loader: DataLoader, device: torch.device, size: int, class_names: tuple[str, ...],
             gray: bool = False, tta_flip: bool = False, show: bool = False, precision: Precision | None = None) -> EvalResult:
    probs, labels = predict(model, loader, device, size, gray, tta_flip, show, precision)
    nll = float(-np.log(np.clip(probs[np.arange(len(labels)), labels], 1e-12, None)).mean()) if len(labels) else float("nan")
    return summarize(probs, labels, class_names, loss=nll)


def validate(ctx: TrainContext, loader: DataLoader) -> tuple[EvalResult, dict]:
    """The model on the validation faces; with an EMA, the better of the raw and the averaged weights
    (early in training the average can trail far behind). Returns the result and what the record adds."""
    cfg, model = ctx.cfg, ctx.model
    gray, names = cfg.color == "gray", model.config.class_names
    res = evaluate(model, loader, ctx.device, cfg.image_size, names, gray, cfg.tta_flip, precision=ctx.precision)
    if ctx.ema is None:
        return res, {}
    ema_model = DAN(model.config).to(ctx.device)
    ema_model.load_state_dict(ctx.ema.state)
    if ctx.precision.channels_last:
        ema_model.to(memory_format=torch.channels_last)
    ema_res = evaluate(ema_model, loader, ctx.device, cfg.image_size, names, gray, cfg.tta_flip, precision=ctx.precision)
    prefer_ema = ema_res.accuracy >= res.accuracy
    extra = {"val_accuracy_raw": res.accuracy, "val_accuracy_ema": ema_res.accuracy, "prefer_ema": prefer_ema}
    return (ema_res if prefer_ema else res), extra


def eval_loader(records: FaceRecords, cfg: TrainConfig, batch_size: int = 256) -> DataLoader:
    return DataLoader(FaceDataset(records, cfg.image_size), batch_size=batch_size, shuffle=False,
                      num_workers=cfg.workers, collate_fn=collate_batch)

"""Train DAN: ``dan-fer train`` / ``python -m dan_core.train`` / ``torchrun ... -m dan_core.train``.

Total loss = CE (hard labels or FER+ vote distributions) + w_af * affinity + w_pt * partition.
Everything a run needs is in ``TrainConfig``; it is written to ``<out>/config.json`` and
into every checkpoint. Imports only torch, numpy and tqdm.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from dan_core.classes import dataset_info
from dan_core.data.augment import augment, to_float
from dan_core.data.batches import DeviceBatches, class_prior, holdout_split, make_sampler
from dan_core.data.dataset import FaceDataset, FaceRecords, collate_batch
from dan_core.data.readers import read_dataset
from dan_core.errors import DanFerError
from dan_core.model.dan import DAN, DANConfig
from dan_core.model.losses import AffinityLoss, ClassAwareLoss, PartitionLoss, make_target
from dan_core.model.resnet import load_resnet18_weights
from dan_core.training.checkpoint import load_file, model_from_checkpoint
from dan_core.training.config import TrainConfig, config_from_args, get_args_parser
from dan_core.training.distributed import DistInfo, init_distributed, pick_device
from dan_core.training.metrics import EvalResult, summarize

__all__ = ["TrainConfig", "config_from_args", "get_args_parser", "main", "run"]


# ---------------------------------------------------------------------------- helpers
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


class Every:
    """``due()`` is true once every ``seconds`` (for step-level checkpoints)."""

    def __init__(self, seconds: float) -> None:
        self.seconds, self.last = seconds, time.monotonic()

    def due(self) -> bool:
        if time.monotonic() - self.last < self.seconds:
            return False
        self.last = time.monotonic()
        return True


def make_optimizer(params: list[nn.Parameter], cfg: TrainConfig) -> torch.optim.Optimizer:
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay, nesterov=cfg.momentum > 0)
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    raise DanFerError(f"unknown optimizer {cfg.optimizer!r}")


def make_scheduler(opt: torch.optim.Optimizer, cfg: TrainConfig, steps_per_epoch: int) -> torch.optim.lr_scheduler.LRScheduler:
    """Schedulers step once per optimisation step (epoch-based ones are scaled to steps)."""
    total = cfg.epochs * steps_per_epoch
    if cfg.scheduler == "step":
        return torch.optim.lr_scheduler.StepLR(opt, cfg.step_size * steps_per_epoch, cfg.gamma)
    if cfg.scheduler == "exponential":
        return torch.optim.lr_scheduler.LambdaLR(opt, lambda s: cfg.gamma ** (s / steps_per_epoch))
    if cfg.scheduler == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=max(total, 1), pct_start=0.15)
    if cfg.scheduler == "cosine":
        warm = cfg.warmup_epochs * steps_per_epoch

        def factor(s: int) -> float:
            if s < warm:
                return (s + 1) / warm
            return 0.5 * (1 + math.cos(math.pi * min(1.0, (s - warm) / max(total - warm, 1))))

        return torch.optim.lr_scheduler.LambdaLR(opt, factor)
    raise DanFerError(f"unknown scheduler {cfg.scheduler!r}")


def freeze_backbone(model: DAN, upto: str) -> tuple[nn.Module, ...]:
    """Stop training the backbone up to and including stage ``upto``; returns the frozen modules,
    which the training loop keeps in eval mode so their BatchNorm statistics stay fixed too."""
    frozen = model.backbone.stages_upto(upto) if upto else ()
    for module in frozen:
        module.requires_grad_(False)
    return frozen


# ---------------------------------------------------------------------------- loops
@dataclass
class EpochStats:
    loss: float
    ce: float
    affinity: float
    partition: float
    train_accuracy: float
    images_per_s: float
    lr: float


def train_one_epoch(model: nn.Module, affinity: AffinityLoss, partition: PartitionLoss, criterion: ClassAwareLoss,
                    loader: DataLoader | DeviceBatches, opt: torch.optim.Optimizer, sched: torch.optim.lr_scheduler.LRScheduler,
                    cfg: TrainConfig, device: torch.device, size: int, ema: ModelEma | None, epoch: int, show: bool,
                    start_step: int = 0, on_step=None, frozen: tuple[nn.Module, ...] = ()) -> EpochStats:
    """One epoch (or what is left of it after ``start_step``); ``on_step(step)`` runs after every step."""
    model.train()
    for module in frozen:
        module.eval()
    sums = np.zeros(4)
    correct = seen = 0
    use_amp = cfg.amp and device.type == "cuda"
    gray = cfg.color == "gray"
    start = time.perf_counter()
    steps = len(loader) if not cfg.max_steps else min(cfg.max_steps, len(loader))
    todo = max(steps - start_step, 0)
    bar = tqdm(loader, total=todo, desc=f"epoch {epoch + 1}/{cfg.epochs} @{size}", disable=not show, leave=False, position=1)
    for i, (images, labels, soft) in enumerate(bar):
        if i >= todo:
            break
        step = start_step + i
        images = images.to(device, non_blocking=True)
        labels = labels.to(device, non_blocking=True)
        target = make_target(labels, soft.to(device, non_blocking=True), cfg.targets)
        x = augment(images, size, cfg.augment, gray=gray)
        if cfg.channels_last and device.type == "cuda":
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_amp):
            out = model(x)
        ce = criterion(out.logits, target)
        af = affinity(out.features, labels)
        pt = partition(out.heads)
        loss = ce + cfg.affinity_weight * af + cfg.partition_weight * pt
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if ema is not None:
            ema.update(model.module if hasattr(model, "module") else model)
        sums += np.array([loss.item(), ce.item(), af.item(), pt.item()])
        correct += (out.logits.argmax(1) == labels).sum().item()
        seen += labels.numel()
        if show and i % 10 == 0:
            bar.set_postfix(loss=f"{sums[0] / (i + 1):.3f}", acc=f"{correct / max(seen, 1):.3f}")
        if on_step is not None:
            on_step(step + 1)
    n = max(todo, 1)
    elapsed = time.perf_counter() - start
    return EpochStats(*(sums / n).tolist(), train_accuracy=correct / max(seen, 1),
                      images_per_s=seen / max(elapsed, 1e-9), lr=opt.param_groups[0]["lr"])


@torch.inference_mode()
def predict(model: nn.Module, loader: DataLoader, device: torch.device, size: int, gray: bool = False,
            tta_flip: bool = False, show: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities (N, C) and labels (N,) over a loader (optionally flip-averaged)."""
    model.eval()
    probs, labels = [], []
    for images, y, _ in tqdm(loader, desc="eval", disable=not show, leave=False):
        x = to_float(images.to(device), size, gray=gray)
        p = model(x).logits.float().softmax(1)
        if tta_flip:
            p = (p + model(x.flip(-1)).logits.float().softmax(1)) / 2
        probs.append(p.cpu())
        labels.append(y)
    return torch.cat(probs).numpy(), torch.cat(labels).numpy()


def evaluate(model: nn.Module, loader: DataLoader, device: torch.device, size: int, class_names: tuple[str, ...],
             gray: bool = False, tta_flip: bool = False, show: bool = False) -> EvalResult:
    probs, labels = predict(model, loader, device, size, gray, tta_flip, show)
    nll = float(-np.log(np.clip(probs[np.arange(len(labels)), labels], 1e-12, None)).mean()) if len(labels) else float("nan")
    return summarize(probs, labels, class_names, loss=nll)


def eval_loader(records: FaceRecords, cfg: TrainConfig, batch_size: int = 256) -> DataLoader:
    return DataLoader(FaceDataset(records, cfg.image_size), batch_size=batch_size, shuffle=False,
                      num_workers=cfg.workers, collate_fn=collate_batch)


# ---------------------------------------------------------------------------- main
def build_datasets(cfg: TrainConfig) -> tuple[FaceRecords, FaceRecords]:
    """(training faces, validation faces); with ``holdout`` the validation faces come out of training."""
    train = read_dataset(cfg.dataset, cfg.data, "train")
    if cfg.holdout > 0:
        keep, held = holdout_split(train.labels, cfg.holdout, cfg.holdout_seed)
        train, held_out = train.subset(keep), train.subset(held)
    if cfg.val_split == "holdout":
        if cfg.holdout <= 0:
            raise DanFerError("--val-split holdout needs --holdout FRACTION")
        val = held_out
    else:
        val = read_dataset(cfg.dataset, cfg.val_data or cfg.data, cfg.val_split)
    if cfg.limit_train:
        train = train.subset(np.arange(min(cfg.limit_train, len(train))))
    if cfg.limit_val:
        val = val.subset(np.arange(min(cfg.limit_val, len(val))))
    if len(train) == 0:
        raise DanFerError("the training set is empty")
    return train, val


def make_train_batches(records: FaceRecords, cfg: TrainConfig, info: DistInfo, device: torch.device,
                       batch_size: int) -> DataLoader | DeviceBatches:
    """Batches of (uint8 images, labels, targets): gathered on the device, or through a DataLoader."""
    if cfg.data_on_device and records.pixels is not None:
        return DeviceBatches(records, batch_size, device, balanced=cfg.balanced, rank=info.rank, world=info.world,
                             seed=cfg.seed)
    sampler = make_sampler(records, cfg.balanced, info.rank, info.world, cfg.seed)
    return DataLoader(FaceDataset(records, cfg.image_size), batch_size=batch_size, sampler=sampler,
                      drop_last=len(records) > batch_size, num_workers=cfg.workers, collate_fn=collate_batch,
                      pin_memory=device.type == "cuda", persistent_workers=cfg.workers > 0)


def save_checkpoint(path: Path, model: nn.Module, affinity: AffinityLoss, opt: torch.optim.Optimizer,
                    sched: torch.optim.lr_scheduler.LRScheduler, ema: ModelEma | None, epoch: int,
                    cfg: TrainConfig, model_cfg: DANConfig, metrics: dict, step: int = 0) -> None:
    """``epoch`` is the last epoch begun; ``step`` > 0 marks a checkpoint taken ``step`` steps into it."""
    tmp = path.with_suffix(".tmp")
    torch.save({
        "step": step,
        "model": model.state_dict(),
        "affinity": affinity.state_dict(),
        "optimizer": opt.state_dict(),
        "scheduler": sched.state_dict(),
        "ema": ema.state if ema is not None else None,
        "prefer_ema": bool(metrics.get("prefer_ema", True)),  # which weights scored better on validation
        "epoch": epoch,
        "config": model_cfg.to_dict(),
        "class_names": list(model_cfg.class_names),
        "train_config": json.loads(json.dumps(asdict(cfg))),
        "metrics": metrics,
    }, tmp)
    os.replace(tmp, path)  # a kill mid-save never leaves a truncated checkpoint


def main(cfg: TrainConfig) -> dict:
    info = init_distributed(cfg.device)
    device = pick_device(cfg.device, info)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed + info.rank)
    np.random.seed(cfg.seed + info.rank)
    out = Path(cfg.out)
    if info.main:
        try:
            out.mkdir(parents=True, exist_ok=True)
            (out / "config.json").write_text(json.dumps(asdict(cfg), indent=2))
        except OSError as exc:
            raise DanFerError(f"cannot write to run folder {out}: {exc}") from exc

    train_records, val_records = build_datasets(cfg)
    class_names = train_records.class_names
    info_ds = dataset_info(cfg.dataset)  # the dataset's declared facts travel with the model
    model_cfg = DANConfig(class_names=class_names, num_heads=cfg.num_heads, input_size=cfg.image_size,
                          color=cfg.color, train_dataset=cfg.dataset, native_size=info_ds.native_size if info_ds else None)
    model = DAN(model_cfg)
    if cfg.init:
        ckpt = load_file(cfg.init)
        load_resnet18_weights(model.backbone, ckpt.get("state_dict", ckpt))
    start_file = load_file(cfg.weights) if cfg.weights else {}
    if start_file:
        start = model_from_checkpoint(start_file, cfg.weights)
        if start.config.class_names != class_names or start.config.num_heads != cfg.num_heads:
            raise DanFerError(f"{cfg.weights} has other classes or heads than this run")
        model.load_state_dict(start.state_dict())
    affinity = AffinityLoss(len(class_names), model.backbone.out_channels)
    if "affinity" in start_file:
        affinity.load_state_dict(start_file["affinity"])  # keep the class centres: no jump in the affinity term
    tau = cfg.la_tau if cfg.loss == "logit-adjusted" else 0.0
    criterion = ClassAwareLoss(class_prior(train_records), tau, cfg.class_weight_power, cfg.label_smoothing).to(device)
    partition = PartitionLoss()
    model.to(device)
    affinity.to(device)
    if cfg.channels_last and device.type == "cuda":
        model.to(memory_format=torch.channels_last)

    per_rank_batch = max(1, cfg.batch_size // info.world)
    train_loader = make_train_batches(train_records, cfg, info, device, per_rank_batch)
    val_loader = eval_loader(val_records, cfg)
    steps_per_epoch = len(train_loader) if not cfg.max_steps else min(cfg.max_steps, len(train_loader))
    frozen = freeze_backbone(model, cfg.freeze)
    opt = make_optimizer([p for p in model.parameters() if p.requires_grad] + list(affinity.parameters()), cfg)
    sched = make_scheduler(opt, cfg, steps_per_epoch)
    start_epoch, start_step, best = 0, 0, -1.0
    ckpt = load_file(cfg.resume) if cfg.resume else {}
    if ckpt:
        model.load_state_dict(ckpt["model"])
        affinity.load_state_dict(ckpt["affinity"])
        opt.load_state_dict(ckpt["optimizer"])
        sched.load_state_dict(ckpt["scheduler"])
    ema = ModelEma(model, cfg.ema) if cfg.ema > 0 else None
    if ckpt:
        if ema is not None and ckpt.get("ema"):
            ema.state = {k: v.to(device) for k, v in ckpt["ema"].items()}
        start_step = int(ckpt.get("step", 0))
        start_epoch = int(ckpt["epoch"]) + (0 if start_step else 1)
        best = float(ckpt.get("metrics", {}).get("best_accuracy", -1.0))
        if info.main:
            where = f", step {start_step + 1}" if start_step else ""
            print(f"resumed from {cfg.resume} at epoch {start_epoch + 1}{where}", file=sys.stderr)

    train_model: nn.Module = model
    if info.world > 1:
        train_model = nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    if cfg.compile:
        train_model = torch.compile(train_model)

    record: dict = {}
    timer = Every(cfg.checkpoint_minutes * 60)
    epochs = tqdm(range(start_epoch, cfg.epochs), desc="epochs", initial=start_epoch, total=cfg.epochs,
                  disable=not info.main, position=0)
    for epoch in epochs:
        for source in (train_loader, getattr(train_loader, "sampler", None)):
            if hasattr(source, "set_epoch"):
                source.set_epoch(epoch)
        size = cfg.low_res if cfg.low_res and epoch < cfg.low_res_epochs else cfg.image_size
        on_step = None
        if info.main and cfg.checkpoint_minutes > 0:
            def on_step(step: int, epoch: int = epoch, metrics: dict = {**record, "best_accuracy": best}) -> None:  # noqa: B006
                if timer.due() and step < steps_per_epoch:
                    save_checkpoint(out / "last.pt", model, affinity, opt, sched, ema, epoch, cfg, model_cfg, metrics, step=step)

        stats = train_one_epoch(train_model, affinity, partition, criterion, train_loader, opt, sched, cfg, device,
                                size, ema, epoch, info.main, start_step=start_step, on_step=on_step,
                                frozen=frozen)
        start_step = 0
        if info.main:
            gray = cfg.color == "gray"
            res = evaluate(model, val_loader, device, cfg.image_size, class_names, gray, cfg.tta_flip)
            prefer_ema = False
            if ema is not None:  # early in training the average can trail far behind: keep the better one
                ema_model = DAN(model_cfg).to(device)
                ema_model.load_state_dict(ema.state)
                ema_res = evaluate(ema_model, val_loader, device, cfg.image_size, class_names, gray, cfg.tta_flip)
                raw_accuracy = res.accuracy
                prefer_ema = ema_res.accuracy >= res.accuracy
                res = ema_res if prefer_ema else res
            best = max(best, res.accuracy)
            record = {"epoch": epoch + 1, "size": size, **asdict(stats), "val_accuracy": res.accuracy,
                      "val_mean_class_accuracy": res.mean_class_accuracy, "val_loss": res.loss, "val_ece": res.ece,
                      "val_per_class": res.per_class, "best_accuracy": best, "time": time.time()}
            if ema is not None:
                record.update(val_accuracy_raw=raw_accuracy, val_accuracy_ema=ema_res.accuracy, prefer_ema=prefer_ema)
            with open(out / "metrics.jsonl", "a") as f:
                f.write(json.dumps(record) + "\n")
            save_checkpoint(out / "last.pt", model, affinity, opt, sched, ema, epoch, cfg, model_cfg, record)
            if res.accuracy >= best:
                save_checkpoint(out / "best.pt", model, affinity, opt, sched, ema, epoch, cfg, model_cfg, record)
            tqdm.write(f"epoch {epoch + 1}/{cfg.epochs} size {size}: loss {stats.loss:.4f} (ce {stats.ce:.4f} af {stats.affinity:.4f} "
                       f"pt {stats.partition:.4f}) train acc {stats.train_accuracy * 100:.2f}% | val acc {res.accuracy * 100:.2f}% "
                       f"mean-class {res.mean_class_accuracy * 100:.2f}% | {stats.images_per_s:.0f} img/s", file=sys.stdout)
        if info.world > 1:
            dist.barrier()
    if info.world > 1:
        dist.destroy_process_group()
    return record


def run(argv: list[str] | None = None) -> int:
    args = get_args_parser().parse_args(argv)
    try:
        main(config_from_args(args))
    except DanFerError as exc:
        print(f"dan-fer train: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(run())

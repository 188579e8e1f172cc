"""Train DAN: ``dan-fer train`` / ``python -m dan_core.train`` / ``torchrun ... -m dan_core.train``.

Everything a run needs is in ``TrainConfig``; it is written to ``<out>/config.json`` and into
every checkpoint. The epoch and evaluation loops are in ``loop.py``; this module sets a run up
(data, model, optimiser, schedule, resuming) and keeps its records. Imports only torch, numpy and tqdm.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from dan_core.classes import dataset_info
from dan_core.data.batches import DeviceBatches, class_prior, holdout_split, make_sampler
from dan_core.data.dataset import FaceDataset, FaceRecords, collate_batch
from dan_core.data.readers import read_dataset
from dan_core.errors import DanFerError
from dan_core.model.dan import DAN, DANConfig
from dan_core.model.losses import AffinityLoss, ClassAwareLoss, PartitionLoss
from dan_core.model.resnet import load_resnet18_weights
from dan_core.training.checkpoint import load_file, model_from_checkpoint
from dan_core.training.config import TrainConfig, config_from_args, get_args_parser
from dan_core.training.distributed import DistInfo, init_distributed, pick_device
from dan_core.training.loop import EpochStats, ModelEma, TrainContext, eval_loader, train_one_epoch, validate
from dan_core.training.precision import Precision, choose_precision

__all__ = ["TrainConfig", "config_from_args", "get_args_parser", "main", "run"]


# ---------------------------------------------------------------------------- parts of a run
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


def save_checkpoint(path: Path, ctx: TrainContext, epoch: int, metrics: dict, step: int = 0) -> None:
    """``epoch`` is the last epoch begun; ``step`` > 0 marks a checkpoint taken ``step`` steps into it."""
    tmp = path.with_suffix(".tmp")
    torch.save({
        "step": step,
        "model": ctx.model.state_dict(),
        "affinity": ctx.affinity.state_dict(),
        "optimizer": ctx.opt.state_dict(),
        "scheduler": ctx.sched.state_dict(),
        "ema": ctx.ema.state if ctx.ema is not None else None,
        "prefer_ema": bool(metrics.get("prefer_ema", True)),  # which weights scored better on validation
        "epoch": epoch,
        "config": ctx.model.config.to_dict(),
        "class_names": list(ctx.model.config.class_names),
        "train_config": json.loads(json.dumps(asdict(ctx.cfg))),
        "metrics": metrics,
    }, tmp)
    os.replace(tmp, path)  # a kill mid-save never leaves a truncated checkpoint


def prepare_run(cfg: TrainConfig, info: DistInfo, precision: Precision) -> Path:
    """Seeds and threads; the run folder with the config and the precision chosen for it (the main process
    writes ``config.json`` and says which precision it runs in)."""
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed + info.rank)
    np.random.seed(cfg.seed + info.rank)
    out = Path(cfg.out)
    if info.main:
        try:
            out.mkdir(parents=True, exist_ok=True)
            (out / "config.json").write_text(json.dumps({**asdict(cfg), "resolved": precision.to_dict()}, indent=2))
        except OSError as exc:
            raise DanFerError(f"cannot write to run folder {out}: {exc}") from exc
        layout = " + channels-last" if precision.channels_last else ""
        print(f"precision: {precision.name}{layout} ({precision.reason})", file=sys.stderr, flush=True)
    return out


def make_model(cfg: TrainConfig, records: FaceRecords) -> tuple[DAN, AffinityLoss]:
    """The network for the training faces (their classes; their dataset's declared facts travel with it) and
    its affinity loss, from --init backbone weights or a whole --weights checkpoint when given."""
    class_names = records.class_names
    info = dataset_info(cfg.dataset)
    model_cfg = DANConfig(class_names=class_names, num_heads=cfg.num_heads, input_size=cfg.image_size,
                          color=cfg.color, train_dataset=cfg.dataset, native_size=info.native_size if info else None)
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
    return model, affinity


def make_context(cfg: TrainConfig, model: DAN, affinity: AffinityLoss, prior: np.ndarray, device: torch.device,
                 precision: Precision, steps_per_epoch: int, show: bool) -> TrainContext:
    """Losses, optimiser and schedule for ``model`` on ``device`` (no EMA yet: see ``resume_or_start``)."""
    tau = cfg.la_tau if cfg.loss == "logit-adjusted" else 0.0
    criterion = ClassAwareLoss(prior, tau, cfg.class_weight_power, cfg.label_smoothing).to(device)
    model.to(device)
    affinity.to(device)
    if precision.channels_last:
        model.to(memory_format=torch.channels_last)
    frozen = freeze_backbone(model, cfg.freeze)
    opt = make_optimizer([p for p in model.parameters() if p.requires_grad] + list(affinity.parameters()), cfg)
    sched = make_scheduler(opt, cfg, steps_per_epoch)
    return TrainContext(model=model, net=model, affinity=affinity, partition=PartitionLoss(), criterion=criterion, opt=opt,
                        sched=sched, cfg=cfg, device=device, precision=precision, frozen=frozen, show=show)


def resume_or_start(ctx: TrainContext, info: DistInfo) -> tuple[int, int, float]:
    """Load --resume's weights, optimiser, schedule and EMA into ``ctx`` (else start the EMA from the
    model); then wrap the model for training. Returns (first epoch, first step in it, best accuracy so far)."""
    cfg = ctx.cfg
    ckpt = load_file(cfg.resume) if cfg.resume else {}
    if ckpt:
        ctx.model.load_state_dict(ckpt["model"])
        ctx.affinity.load_state_dict(ckpt["affinity"])
        ctx.opt.load_state_dict(ckpt["optimizer"])
        ctx.sched.load_state_dict(ckpt["scheduler"])
    ctx.ema = ModelEma(ctx.model, cfg.ema) if cfg.ema > 0 else None
    start_epoch, start_step, best = 0, 0, -1.0
    if ckpt:
        if ctx.ema is not None and ckpt.get("ema"):
            ctx.ema.state = {k: v.to(ctx.device) for k, v in ckpt["ema"].items()}
        start_step = int(ckpt.get("step", 0))
        start_epoch = int(ckpt["epoch"]) + (0 if start_step else 1)
        best = float(ckpt.get("metrics", {}).get("best_accuracy", -1.0))
        if info.main:
            where = f", step {start_step + 1}" if start_step else ""
            print(f"resumed from {cfg.resume} at epoch {start_epoch + 1}{where}", file=sys.stderr)
    if info.world > 1:
        device = ctx.device
        ctx.net = nn.parallel.DistributedDataParallel(ctx.model, device_ids=[device.index] if device.type == "cuda" else None)
    if cfg.compile:
        ctx.net = torch.compile(ctx.net)
    return start_epoch, start_step, best


def finish_epoch(ctx: TrainContext, val_loader: DataLoader, out: Path, epoch: int, size: int, stats: EpochStats,
                 best: float) -> tuple[dict, float]:
    """Validate, append the epoch's record to metrics.jsonl, save last.pt (and best.pt), say how it went."""
    res, extra = validate(ctx, val_loader)
    best = max(best, res.accuracy)
    record = {"epoch": epoch + 1, "size": size, **asdict(stats), "val_accuracy": res.accuracy,
              "val_mean_class_accuracy": res.mean_class_accuracy, "val_loss": res.loss, "val_ece": res.ece,
              "val_per_class": res.per_class, "best_accuracy": best, "time": time.time(), **extra}
    with open(out / "metrics.jsonl", "a") as f:
        f.write(json.dumps(record) + "\n")
    save_checkpoint(out / "last.pt", ctx, epoch, record)
    if res.accuracy >= best:
        save_checkpoint(out / "best.pt", ctx, epoch, record)
    tqdm.write(f"epoch {epoch + 1}/{ctx.cfg.epochs} size {size}: loss {stats.loss:.4f} (ce {stats.ce:.4f} af {stats.affinity:.4f} "
               f"pt {stats.partition:.4f}) train acc {stats.train_accuracy * 100:.2f}% | val acc {res.accuracy * 100:.2f}% "
               f"mean-class {res.mean_class_accuracy * 100:.2f}% | {stats.images_per_s:.0f} img/s", file=sys.stdout)
    return record, best


# ---------------------------------------------------------------------------- main
def main(cfg: TrainConfig) -> dict:
    """One training run (one process of a torchrun); returns the last epoch's record."""
    info = init_distributed(cfg.device)
    device = pick_device(cfg.device, info)
    precision = choose_precision(device, amp=cfg.amp, channels_last=cfg.channels_last, precision=cfg.precision)
    out = prepare_run(cfg, info, precision)
    train_records, val_records = build_datasets(cfg)
    model, affinity = make_model(cfg, train_records)
    train_loader = make_train_batches(train_records, cfg, info, device, max(1, cfg.batch_size // info.world))
    val_loader = eval_loader(val_records, cfg)
    steps_per_epoch = len(train_loader) if not cfg.max_steps else min(cfg.max_steps, len(train_loader))
    ctx = make_context(cfg, model, affinity, class_prior(train_records), device, precision, steps_per_epoch,
                       show=info.main)
    start_epoch, start_step, best = resume_or_start(ctx, info)

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
                    save_checkpoint(out / "last.pt", ctx, epoch, metrics, step=step)

        stats = train_one_epoch(ctx, train_loader, epoch, size, start_step=start_step, on_step=on_step)
        start_step = 0
        if info.main:
            record, best = finish_epoch(ctx, val_loader, out, epoch, size, stats, best)
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

"""Train DAN: ``dan-fer train`` / ``python -m dan_core.train`` / ``torchrun ... -m dan_core.train``.

Total loss = CE (hard labels or FER+ vote distributions) + w_af * affinity + w_pt * partition.
Everything a run needs is in ``TrainConfig``; it is written to ``<out>/config.json`` and
into every checkpoint. Imports only torch, numpy and tqdm.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler, RandomSampler, Sampler, WeightedRandomSampler
from tqdm import tqdm

from dan_core.augment import AugmentConfig, augment, to_float
from dan_core.checkpoint import load_file, load_model
from dan_core.data import FaceDataset, FaceRecords, collate_batch, read_dataset
from dan_core.errors import DanFerError
from dan_core.losses import AffinityLoss, PartitionLoss, soft_cross_entropy
from dan_core.metrics import EvalResult, summarize
from dan_core.model import DAN, DANConfig
from dan_core.resnet import load_resnet18_weights


@dataclass
class TrainConfig:
    dataset: str = "ferplus"
    data: str = ""
    val_data: str = ""  # defaults to --data (its val split)
    val_split: str = "val"
    out: str = "runs/dan"
    image_size: int = 112
    color: str = "rgb"  # "gray" trains on luma repeated into 3 channels (FER data is grey)
    num_heads: int = 4
    epochs: int = 40
    batch_size: int = 256  # global batch; split across DDP processes
    optimizer: str = "sgd"  # sgd | adam | adamw
    lr: float = 0.1  # paper RAF-DB: SGD 0.1; AffectNet: Adam 1e-4
    momentum: float = 0.9
    weight_decay: float = 1e-4
    scheduler: str = "step"  # step (paper RAF-DB) | exponential (paper AffectNet) | onecycle | cosine
    step_size: int = 10
    gamma: float = 0.1
    warmup_epochs: float = 0.0  # linear warm-up for cosine
    targets: str = "hard"  # hard | soft (vote distributions when the dataset has them)
    label_smoothing: float = 0.0
    balanced: bool = False  # class-balanced sampling (paper: AffectNet)
    affinity_weight: float = 1.0
    partition_weight: float = 1.0
    ema: float = 0.0  # EMA decay of weights, e.g. 0.999; 0 disables
    tta_flip: bool = True  # validate with horizontal-flip test-time augmentation
    low_res: int = 0  # progressive resizing: train the first low_res_epochs at this size
    low_res_epochs: int = 0
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    amp: bool = True  # bfloat16 autocast on CUDA
    channels_last: bool = True  # on CUDA
    compile: bool = False
    workers: int = 0
    seed: int = 0
    device: str = "auto"
    resume: str = ""  # a last.pt to continue from
    init: str = ""  # torchvision-named ResNet-18 weights for the backbone
    weights: str = ""  # start from a whole dan-fer checkpoint (fine-tuning, e.g. at a larger size)
    limit_train: int = 0  # use only the first N training samples (smoke runs)
    limit_val: int = 0
    max_steps: int = 0  # stop each epoch after N steps (smoke runs)
    threads: int = 0  # torch CPU threads (0: torch default)

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        d = dict(d)
        aug = d.pop("augment", {}) or {}
        for k in ("scale", "erase_area"):
            if k in aug:
                aug[k] = tuple(aug[k])
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        return cls(augment=AugmentConfig(**aug), **known)


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


class DistributedWeightedSampler(Sampler[int]):
    """Class-balanced sampling with replacement, sharded across DDP processes."""

    def __init__(self, weights: torch.Tensor, num_samples: int, rank: int, world: int, seed: int) -> None:
        self.weights, self.rank, self.world, self.seed, self.epoch = weights, rank, world, seed, 0
        self.per_rank = math.ceil(num_samples / world)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):
        g = torch.Generator().manual_seed(self.seed + self.epoch)
        idx = torch.multinomial(self.weights, self.per_rank * self.world, replacement=True, generator=g)
        return iter(idx[self.rank :: self.world].tolist())

    def __len__(self) -> int:
        return self.per_rank


@dataclass
class DistInfo:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def init_distributed(cfg: TrainConfig) -> DistInfo:
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return DistInfo()
    backend = "nccl" if torch.cuda.is_available() and cfg.device != "cpu" else "gloo"
    dist.init_process_group(backend)
    info = DistInfo(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))
    if backend == "nccl":
        torch.cuda.set_device(info.local_rank)
    return info


def pick_device(cfg: TrainConfig, info: DistInfo) -> torch.device:
    if cfg.device == "auto":
        return torch.device(f"cuda:{info.local_rank}" if torch.cuda.is_available() else "cpu")
    return torch.device(cfg.device)


def make_sampler(records: FaceRecords, cfg: TrainConfig, info: DistInfo) -> Sampler[int]:
    if cfg.balanced:
        counts = records.class_counts().astype(np.float64)
        weights = torch.as_tensor(1.0 / np.maximum(counts, 1)[records.labels], dtype=torch.double)
        if info.world > 1:
            return DistributedWeightedSampler(weights, len(records), info.rank, info.world, cfg.seed)
        return WeightedRandomSampler(weights, len(records), replacement=True)
    if info.world > 1:
        return DistributedSampler(range(len(records)), num_replicas=info.world, rank=info.rank, shuffle=True, seed=cfg.seed)
    return RandomSampler(range(len(records)))


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


def train_one_epoch(model: nn.Module, affinity: AffinityLoss, partition: PartitionLoss, loader: DataLoader,
                    opt: torch.optim.Optimizer, sched: torch.optim.lr_scheduler.LRScheduler, cfg: TrainConfig,
                    device: torch.device, size: int, ema: ModelEma | None, epoch: int, show: bool) -> EpochStats:
    model.train()
    sums = np.zeros(4)
    correct = seen = 0
    use_amp = cfg.amp and device.type == "cuda"
    gray = cfg.color == "gray"
    start = time.perf_counter()
    steps = len(loader) if not cfg.max_steps else min(cfg.max_steps, len(loader))
    bar = tqdm(loader, total=steps, desc=f"epoch {epoch + 1}/{cfg.epochs} @{size}", disable=not show, leave=False)
    for step, (images, labels, soft) in enumerate(bar):
        if step >= steps:
            break
        images = images.to(device, non_blocking=True)
        labels = labels.to(device, non_blocking=True)
        target = soft.to(device, non_blocking=True) if cfg.targets == "soft" else None
        x = augment(images, size, cfg.augment, gray=gray)
        if cfg.channels_last and device.type == "cuda":
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_amp):
            out = model(x)
        if target is not None:
            ce = soft_cross_entropy(out.logits, target, cfg.label_smoothing)
        else:
            ce = nn.functional.cross_entropy(out.logits.float(), labels, label_smoothing=cfg.label_smoothing)
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
        if show and step % 10 == 0:
            bar.set_postfix(loss=f"{sums[0] / (step + 1):.3f}", acc=f"{correct / max(seen, 1):.3f}")
    n = max(steps, 1)
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
    train = read_dataset(cfg.dataset, cfg.data, "train")
    val = read_dataset(cfg.dataset, cfg.val_data or cfg.data, cfg.val_split)
    if cfg.limit_train:
        train = train.subset(np.arange(min(cfg.limit_train, len(train))))
    if cfg.limit_val:
        val = val.subset(np.arange(min(cfg.limit_val, len(val))))
    if len(train) == 0:
        raise DanFerError("the training set is empty")
    return train, val


def save_checkpoint(path: Path, model: nn.Module, affinity: AffinityLoss, opt: torch.optim.Optimizer,
                    sched: torch.optim.lr_scheduler.LRScheduler, ema: ModelEma | None, epoch: int,
                    cfg: TrainConfig, model_cfg: DANConfig, metrics: dict) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save({
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
    info = init_distributed(cfg)
    device = pick_device(cfg, info)
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
    model_cfg = DANConfig(class_names=class_names, num_heads=cfg.num_heads, input_size=cfg.image_size,
                          color=cfg.color, train_dataset=cfg.dataset)
    model = DAN(model_cfg)
    if cfg.init:
        ckpt = load_file(cfg.init)
        load_resnet18_weights(model.backbone, ckpt.get("state_dict", ckpt))
    if cfg.weights:
        start = load_model(cfg.weights)
        if start.config.class_names != class_names or start.config.num_heads != cfg.num_heads:
            raise DanFerError(f"{cfg.weights} has other classes or heads than this run")
        model.load_state_dict(start.state_dict())
    affinity = AffinityLoss(len(class_names), model_cfg.feat_dim)
    partition = PartitionLoss()
    model.to(device)
    affinity.to(device)
    if cfg.channels_last and device.type == "cuda":
        model.to(memory_format=torch.channels_last)

    per_rank_batch = max(1, cfg.batch_size // info.world)
    sampler = make_sampler(train_records, cfg, info)
    train_loader = DataLoader(FaceDataset(train_records, cfg.image_size), batch_size=per_rank_batch, sampler=sampler,
                              drop_last=len(train_records) > per_rank_batch, num_workers=cfg.workers,
                              collate_fn=collate_batch, pin_memory=device.type == "cuda",
                              persistent_workers=cfg.workers > 0)
    val_loader = eval_loader(val_records, cfg)
    steps_per_epoch = len(train_loader) if not cfg.max_steps else min(cfg.max_steps, len(train_loader))
    opt = make_optimizer(list(model.parameters()) + list(affinity.parameters()), cfg)
    sched = make_scheduler(opt, cfg, steps_per_epoch)
    start_epoch, best = 0, -1.0
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
        start_epoch = int(ckpt["epoch"]) + 1
        best = float(ckpt.get("metrics", {}).get("best_accuracy", -1.0))
        if info.main:
            print(f"resumed from {cfg.resume} at epoch {start_epoch + 1}", file=sys.stderr)

    train_model: nn.Module = model
    if info.world > 1:
        train_model = nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    if cfg.compile:
        train_model = torch.compile(train_model)

    record: dict = {}
    for epoch in range(start_epoch, cfg.epochs):
        if hasattr(sampler, "set_epoch"):
            sampler.set_epoch(epoch)
        size = cfg.low_res if cfg.low_res and epoch < cfg.low_res_epochs else cfg.image_size
        stats = train_one_epoch(train_model, affinity, partition, train_loader, opt, sched, cfg, device, size,
                                ema, epoch, info.main)
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
            print(f"epoch {epoch + 1}/{cfg.epochs} size {size}: loss {stats.loss:.4f} (ce {stats.ce:.4f} af {stats.affinity:.4f} "
                  f"pt {stats.partition:.4f}) train acc {stats.train_accuracy * 100:.2f}% | val acc {res.accuracy * 100:.2f}% "
                  f"mean-class {res.mean_class_accuracy * 100:.2f}% | {stats.images_per_s:.0f} img/s", flush=True)
        if info.world > 1:
            dist.barrier()
    if info.world > 1:
        dist.destroy_process_group()
    return record


# ---------------------------------------------------------------------------- CLI
def get_args_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    p = parser or argparse.ArgumentParser(prog="dan-fer train", description=__doc__.split("\n")[0])
    d = TrainConfig()
    g = p.add_argument_group("data")
    g.add_argument("--dataset", default=d.dataset, help="rafdb, affectnet7, affectnet8, sfew, fer2013, ferplus or folder")
    g.add_argument("--data", required=True, help="dataset root (ferplus: folder with the vote table and FER2013 pixels)")
    g.add_argument("--val-data", default="", help="validation root (default: --data)")
    g.add_argument("--val-split", default=d.val_split, choices=("val", "test"))
    g.add_argument("--balanced", action="store_true", help="class-balanced sampling")
    g.add_argument("--targets", default=d.targets, choices=("hard", "soft"), help="soft: FER+ vote distributions")
    g.add_argument("--workers", type=int, default=d.workers)
    g.add_argument("--limit-train", type=int, default=0)
    g.add_argument("--limit-val", type=int, default=0)
    g = p.add_argument_group("model")
    g.add_argument("--image-size", type=int, default=d.image_size)
    g.add_argument("--color", default=d.color, choices=("rgb", "gray"))
    g.add_argument("--num-heads", type=int, default=d.num_heads)
    g.add_argument("--init", default="", help="torchvision-named ResNet-18 weights (ImageNet, MS-Celeb-1M)")
    g.add_argument("--weights", default="", help="start from a dan-fer checkpoint (EMA weights when present)")
    g = p.add_argument_group("optimisation")
    g.add_argument("--epochs", type=int, default=d.epochs)
    g.add_argument("--batch-size", type=int, default=d.batch_size)
    g.add_argument("--optimizer", default=d.optimizer, choices=("sgd", "adam", "adamw"))
    g.add_argument("--lr", type=float, default=d.lr)
    g.add_argument("--momentum", type=float, default=d.momentum)
    g.add_argument("--weight-decay", type=float, default=d.weight_decay)
    g.add_argument("--scheduler", default=d.scheduler, choices=("step", "exponential", "onecycle", "cosine"))
    g.add_argument("--step-size", type=int, default=d.step_size)
    g.add_argument("--gamma", type=float, default=d.gamma)
    g.add_argument("--warmup-epochs", type=float, default=d.warmup_epochs)
    g.add_argument("--label-smoothing", type=float, default=d.label_smoothing)
    g.add_argument("--affinity-weight", type=float, default=d.affinity_weight)
    g.add_argument("--partition-weight", type=float, default=d.partition_weight)
    g.add_argument("--ema", type=float, default=d.ema, help="EMA decay, e.g. 0.999 (0: off)")
    g.add_argument("--no-tta", action="store_true", help="validate without flip test-time augmentation")
    g.add_argument("--low-res", type=int, default=0, help="progressive resizing: size of the first epochs")
    g.add_argument("--low-res-epochs", type=int, default=0)
    g.add_argument("--max-steps", type=int, default=0, help="cap steps per epoch (smoke runs)")
    g = p.add_argument_group("augmentation")
    a = AugmentConfig()
    g.add_argument("--rotation", type=float, default=a.rotation)
    g.add_argument("--translate", type=float, default=a.translate)
    g.add_argument("--scale-min", type=float, default=a.scale[0])
    g.add_argument("--scale-max", type=float, default=a.scale[1])
    g.add_argument("--affine-p", type=float, default=a.affine_p)
    g.add_argument("--erase-p", type=float, default=a.erase_p)
    g.add_argument("--brightness", type=float, default=a.brightness)
    g.add_argument("--contrast", type=float, default=a.contrast)
    g = p.add_argument_group("run")
    g.add_argument("--out", default=d.out)
    g.add_argument("--resume", default="", help="last.pt of an earlier run")
    g.add_argument("--device", default=d.device)
    g.add_argument("--seed", type=int, default=d.seed)
    g.add_argument("--threads", type=int, default=0)
    g.add_argument("--no-amp", action="store_true")
    g.add_argument("--no-channels-last", action="store_true")
    g.add_argument("--compile", action="store_true")
    return p


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    if args.resume:  # a resumed run keeps its own recipe; only paths/device may change
        ckpt = load_file(args.resume)
        cfg = TrainConfig.from_dict(ckpt["train_config"])
        cfg.resume, cfg.device, cfg.workers = args.resume, args.device, args.workers
        cfg.out = str(Path(args.resume).parent)  # a resumed run goes on in its own folder
        if args.epochs != TrainConfig.epochs and args.epochs != cfg.epochs:
            if cfg.scheduler in ("onecycle", "cosine"):
                raise DanFerError(f"a {cfg.scheduler} schedule was planned for {cfg.epochs} epochs and cannot be extended; "
                                  "start a new run with --weights instead")
            cfg.epochs = args.epochs
        return cfg
    aug = AugmentConfig(rotation=args.rotation, translate=args.translate, scale=(args.scale_min, args.scale_max),
                        affine_p=args.affine_p, erase_p=args.erase_p, brightness=args.brightness, contrast=args.contrast)
    return TrainConfig(
        dataset=args.dataset, data=args.data, val_data=args.val_data, val_split=args.val_split, out=args.out,
        image_size=args.image_size, color=args.color, num_heads=args.num_heads, epochs=args.epochs,
        batch_size=args.batch_size, optimizer=args.optimizer, lr=args.lr, momentum=args.momentum,
        weight_decay=args.weight_decay, scheduler=args.scheduler, step_size=args.step_size, gamma=args.gamma,
        warmup_epochs=args.warmup_epochs, targets=args.targets, label_smoothing=args.label_smoothing,
        balanced=args.balanced, affinity_weight=args.affinity_weight, partition_weight=args.partition_weight,
        ema=args.ema, tta_flip=not args.no_tta, low_res=args.low_res, low_res_epochs=args.low_res_epochs,
        augment=aug, amp=not args.no_amp, channels_last=not args.no_channels_last, compile=args.compile,
        workers=args.workers, seed=args.seed, device=args.device, init=args.init, weights=args.weights, limit_train=args.limit_train,
        limit_val=args.limit_val, max_steps=args.max_steps, threads=args.threads,
    )


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

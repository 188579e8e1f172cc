"""TrainConfig: everything a training run needs, each option written once with its help text.

The ``dan-fer train`` flags are generated from these fields (see ``cli_fields``); the resolved
config is written to ``<out>/config.json`` and into every checkpoint, so a run can be repeated
or resumed from its own files. Imports only the standard library and dan_core's torch-only modules.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from dan_core import cli_fields
from dan_core.cli_fields import option
from dan_core.data.augment import AugmentConfig
from dan_core.data.readers import READERS
from dan_core.errors import DanFerError
from dan_core.model.resnet import STAGES
from dan_core.training.checkpoint import load_file
from dan_core.training.precision import PRECISIONS

DATA, MODEL, OPTIM, RUN = "data", "model", "optimisation", "run"


@dataclass
class TrainConfig:
    # data
    dataset: str = option("ferplus", "dataset reader", group=DATA, choices=tuple(READERS))
    data: str = option("", "dataset root (ferplus: folder with the vote table and the FER2013 pixels)", group=DATA,
                       required=True)
    val_data: str = option("", "validation root (default: --data)", group=DATA)
    val_split: str = option("val", "validation split; holdout: the faces --holdout keeps out of training", group=DATA,
                            choices=("val", "test", "holdout"))
    holdout: float = option(0.0, "fraction of the training faces held out per class as the selection split", group=DATA)
    holdout_seed: int = option(1234, "seed of the held-out draw (keep it fixed across runs you compare)", group=DATA)
    balanced: bool = option(False, "class-balanced sampling (paper: AffectNet)", group=DATA)
    targets: str = option("hard", "hard: majority label; soft: FER+ vote distribution; sample: a label drawn from "
                          "the votes each step", group=DATA, choices=("hard", "soft", "sample"))
    data_on_device: bool = option(False, "keep the whole training set on the device and batch it there (no DataLoader)",
                                  group=DATA)
    workers: int = option(0, "DataLoader worker processes", group=DATA)
    limit_train: int = option(0, "use only the first N training faces (smoke runs)", group=DATA)
    limit_val: int = option(0, "use only the first N validation faces", group=DATA)
    # model
    image_size: int = option(112, "input size; 112 keeps ONNX CPU inference near 12 ms/face", group=MODEL)
    color: str = option("rgb", "gray trains on luma repeated into 3 channels (FER data is grey)", group=MODEL,
                        choices=("rgb", "gray"))
    num_heads: int = option(4, "cross-attention heads (paper: 4)", group=MODEL)
    init: str = option("", "torchvision-named ResNet-18 weights for the backbone (ImageNet, MS-Celeb-1M)", group=MODEL)
    weights: str = option("", "start from a whole dan-fer checkpoint (fine-tuning; its EMA weights when better)",
                          group=MODEL)
    freeze: str = option("", "keep the backbone fixed up to and including this stage (weights and BatchNorm "
                         "statistics): fine-tuning on a slow CPU, layer2 trains about 1.5x faster", group=MODEL,
                         choices=("", *list(STAGES)[:-1]))  # all but layer4: something must train
    # optimisation
    epochs: int = option(40, "epochs", group=OPTIM)
    batch_size: int = option(256, "global batch, split across DDP processes", group=OPTIM)
    optimizer: str = option("sgd", "optimizer (paper RAF-DB: SGD; AffectNet: Adam)", group=OPTIM,
                            choices=("sgd", "adam", "adamw"))
    lr: float = option(0.1, "peak learning rate (paper RAF-DB: SGD 0.1; AffectNet: Adam 1e-4)", group=OPTIM)
    momentum: float = option(0.9, "SGD momentum (Nesterov)", group=OPTIM)
    weight_decay: float = option(1e-4, "weight decay", group=OPTIM)
    scheduler: str = option("step", "step (paper RAF-DB), exponential (paper AffectNet), onecycle or cosine",
                            group=OPTIM, choices=("step", "exponential", "onecycle", "cosine"))
    step_size: int = option(10, "epochs between decays of the step schedule", group=OPTIM)
    gamma: float = option(0.1, "decay factor of the step / exponential schedules", group=OPTIM)
    warmup_epochs: float = option(0.0, "linear warm-up of the cosine schedule, in epochs", group=OPTIM)
    loss: str = option("ce", "logit-adjusted: train on logits + tau*log(prior), so rare classes win by a margin "
                       "(Menon et al.; tau 1 = Balanced Softmax)", group=OPTIM, choices=("ce", "logit-adjusted"))
    la_tau: float = option(1.0, "logit adjustment strength tau", group=OPTIM)
    class_weight_power: float = option(0.0, "weight each class by (1/prior)**power (0: off, 1: inverse frequency)",
                                       group=OPTIM)
    label_smoothing: float = option(0.0, "label smoothing", group=OPTIM)
    affinity_weight: float = option(1.0, "weight of the affinity loss", group=OPTIM)
    partition_weight: float = option(1.0, "weight of the partition loss", group=OPTIM)
    partition_warmup: float = option(0.0, "epochs before the partition loss has its full weight (off for the first half, "
                                     "then a linear ramp): from random weights it saturates the heads' softmax at once "
                                     "and stalls learning (2 epochs)",
                                     group=OPTIM)
    ema: float = option(0.0, "EMA decay of the weights, e.g. 0.999 (0: off)", group=OPTIM)
    tta_flip: bool = option(True, "validate with horizontal-flip test-time augmentation", group=OPTIM, flag="--no-tta")
    low_res: int = option(0, "progressive resizing: train the first --low-res-epochs at this size", group=OPTIM)
    low_res_epochs: int = option(0, "epochs at --low-res", group=OPTIM)
    max_steps: int = option(0, "cap the steps of each epoch (smoke runs)", group=OPTIM)
    augment: AugmentConfig = option(AugmentConfig, "augmentation", nested=True)
    # run
    out: str = option("runs/dan", "run folder (config, metrics.jsonl, last.pt, best.pt)", group=RUN)
    resume: str = option("", "continue a run from its last.pt (keeps the run's own recipe)", group=RUN)
    device: str = option("auto", "auto, cpu, cuda or cuda:N", group=RUN)
    seed: int = option(0, "random seed", group=RUN)
    threads: int = option(0, "torch CPU threads (0: torch default)", group=RUN)
    checkpoint_minutes: float = option(0.0, "also save last.pt mid-epoch this often, so a stop loses little", group=RUN)
    amp: bool = option(True, "bfloat16 autocast where the device runs it natively (CUDA; CPUs with AVX512-BF16 or AMX); "
                       "--no-amp: float32", group=RUN)
    precision: str = option("auto", "auto: bfloat16 only where native (see --no-amp); bf16 / fp32 force one (bf16 "
                            "on a CPU without native support is emulated and slow)", group=RUN, choices=PRECISIONS)
    channels_last: bool = option(True, "channels-last memory format with bfloat16 and on CUDA", group=RUN)
    compile: bool = option(False, "torch.compile the model", group=RUN)

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        d = dict(d)
        aug = d.pop("augment", {}) or {}
        for k in ("scale", "erase_area"):
            if k in aug:
                aug[k] = tuple(aug[k])
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        return cls(augment=AugmentConfig(**aug), **known)


def get_args_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    p = parser or argparse.ArgumentParser(prog="dan-fer train", description="Train DAN (see dan_core.training.train).")
    return cli_fields.add_arguments(p, TrainConfig)


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    if args.resume:  # a resumed run keeps its own recipe; only paths, device and threads may change
        ckpt = load_file(args.resume)
        if not isinstance(ckpt.get("train_config"), dict):  # a model (export --out X.pt, the shipped .pt): no run to resume
            raise DanFerError(f"{args.resume} is a model, not a training checkpoint (no optimizer state or training recipe): "
                              f"to start from its weights, use --weights {args.resume}")
        cfg = TrainConfig.from_dict(ckpt["train_config"])
        cfg.resume, cfg.device, cfg.workers = args.resume, args.device, args.workers
        cfg.threads = args.threads or cfg.threads  # how many cores it may use can change between sessions
        cfg.out = str(Path(args.resume).parent)  # a resumed run goes on in its own folder
        if args.epochs != TrainConfig.epochs and args.epochs != cfg.epochs:
            if cfg.scheduler in ("onecycle", "cosine"):
                raise DanFerError(f"a {cfg.scheduler} schedule was planned for {cfg.epochs} epochs and cannot be extended; "
                                  "start a new run with --weights instead")
            cfg.epochs = args.epochs
        return cfg
    return cli_fields.from_args(TrainConfig, args)

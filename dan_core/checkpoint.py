"""Checkpoints: save, load safely (``weights_only=True``), import the paper's official files.

Our checkpoint is a dict: ``model`` (state dict), ``config`` (DANConfig as dict),
``class_names``, and for training runs ``optimizer``, ``scheduler``, ``epoch``, ``train_config``,
``ema`` and ``metrics``. It rebuilds its own model from ``config``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from dan_core.classes import BY_DATASET
from dan_core.errors import DanFerError, first_line
from dan_core.model import DAN, IMAGENET_MEAN, IMAGENET_STD, DANConfig


def load_file(path: str | Path) -> dict[str, Any]:
    """torch.load with weights_only=True; any failure becomes one DanFerError line."""
    path = Path(path)
    if not path.is_file():
        raise DanFerError(f"checkpoint not found: {path}")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # corrupt zip, pickle with code, truncated file ...
        raise DanFerError(f"cannot read checkpoint {path}: {first_line(exc)}") from exc
    if not isinstance(obj, dict):
        raise DanFerError(f"{path} is not a checkpoint dict (got {type(obj).__name__})")
    return obj


def load_model(path: str | Path, *, use_ema: bool = True) -> DAN:
    """Rebuild a DAN from one of our checkpoints (EMA weights when present and better on validation)."""
    ckpt = load_file(path)
    if "config" not in ckpt or "model" not in ckpt:
        if "model_state_dict" in ckpt:
            raise DanFerError(f"{path} looks like an official DAN checkpoint: convert it with `dan-fer import-checkpoint`")
        raise DanFerError(f"{path} is not a dan-fer checkpoint (no 'config'/'model' keys)")
    config = DANConfig.from_dict(ckpt["config"])
    model = DAN(config)
    # training records which of the EMA and the raw weights scored better on validation
    state = ckpt["ema"] if use_ema and ckpt.get("ema") and ckpt.get("prefer_ema", True) else ckpt["model"]
    state = {k: v.float() if v.is_floating_point() else v for k, v in state.items()}
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise DanFerError(f"{path} does not match its own config: {first_line(exc, 10_000)}") from exc
    return model.eval()


def save_model(model: DAN, path: str | Path, *, half: bool = False, extra: Mapping[str, Any] | None = None) -> None:
    """Save weights + config (+ extra keys); ``half`` stores floating weights as float16."""
    def store(v: torch.Tensor) -> torch.Tensor:
        # values beyond float16's range (e.g. a BatchNorm running_var) stay float32
        fits = v.is_floating_point() and v.numel() > 0 and v.abs().max() < torch.finfo(torch.float16).max
        return (v.half() if half and fits else v).detach().cpu().clone()

    state = {k: store(v) for k, v in model.state_dict().items()}
    out = {"model": state, "config": model.config.to_dict(), "class_names": list(model.config.class_names)}
    if extra:
        out.update(extra)
    torch.save(out, path)


# ---------------------------------------------------------------------- official DAN
_BACKBONE_INDEX = {"0": "conv1", "1": "bn1", "4": "layer1", "5": "layer2", "6": "layer3", "7": "layer4"}


def convert_official_state_dict(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename the official DAN layout (features.N, cat_headI, fc, bn) to ours."""
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        key = key.removeprefix("module.")
        if m := re.match(r"features\.(\d+)\.(.*)", key):
            if m.group(1) not in _BACKBONE_INDEX:
                raise DanFerError(f"unexpected backbone key in official checkpoint: {key}")
            out[f"backbone.{_BACKBONE_INDEX[m.group(1)]}.{m.group(2)}"] = value
        elif m := re.match(r"cat_head(\d+)\.(.*)", key):
            out[f"heads.{m.group(1)}.{m.group(2)}"] = value
        elif key.startswith(("fc.", "bn.")):
            out[key] = value
        else:
            raise DanFerError(f"unexpected key in official checkpoint: {key}")
    return out


def import_official(path: str | Path, dataset: str) -> DAN:
    """Build our DAN from a paper checkpoint (e.g. rafdb_epoch21_acc0.897_bacc0.8275.pth)."""
    if dataset not in ("rafdb", "affectnet7", "affectnet8"):
        raise DanFerError(f"--dataset must be rafdb, affectnet7 or affectnet8, not {dataset!r}")
    ckpt = load_file(path)
    state = ckpt.get("model_state_dict", ckpt.get("state_dict"))
    if not isinstance(state, Mapping):
        raise DanFerError(f"{path} has no 'model_state_dict': not an official DAN checkpoint")
    state = convert_official_state_dict(state)
    num_heads = len({k.split(".")[1] for k in state if k.startswith("heads.")})
    class_names = BY_DATASET[dataset]
    if "fc.weight" in state and state["fc.weight"].shape[0] != len(class_names):
        raise DanFerError(
            f"{path} has {state['fc.weight'].shape[0]} classes but --dataset {dataset} has {len(class_names)}"
        )
    config = DANConfig(
        class_names=class_names, num_heads=num_heads, input_size=224, color="rgb",
        mean=IMAGENET_MEAN, std=IMAGENET_STD, train_dataset=dataset,
    )
    model = DAN(config)
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise DanFerError(f"{path}: weights do not fit DAN: {first_line(exc, 10_000)}") from exc
    return model.eval()

"""Checkpoints: save, load safely (``weights_only=True``), import the paper's official files.

Our checkpoint is a dict: ``model`` (state dict), ``config`` (DANConfig as dict),
``class_names``, and for training runs ``optimizer``, ``scheduler``, ``epoch``, ``train_config``,
``ema`` and ``metrics``. It rebuilds its own model from ``config``.
"""

from __future__ import annotations

import math
import pickle
import re
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from dan_core.classes import BY_DATASET
from dan_core.errors import DanFerError, first_line
from dan_core.model.dan import DAN, IMAGENET_MEAN, IMAGENET_STD, DANConfig


def _unpickling_detail(exc: BaseException) -> str:
    """What torch's weights-only unpickler refused, without its advice to load the file unsafely."""
    text = str(exc)
    if "WeightsUnpickler error:" in text:
        text = text.split("WeightsUnpickler error:", 1)[1]
    for line in text.strip().splitlines():
        line = line.strip()
        if line and "weights_only" not in line and not line.startswith(("Check the documentation", "Please file")):
            # "Unsupported global: GLOBAL numpy.x.Y was not an allowed global by default. Please use ..."
            return line.split(" was not an allowed global")[0].split(". Please")[0][:160]
    return type(exc).__name__


def load_file(path: str | Path) -> dict[str, Any]:
    """torch.load with weights_only=True; any failure becomes one DanFerError line."""
    path = Path(path)
    if not path.is_file():
        raise DanFerError(f"checkpoint not found: {path}")
    try:
        with warnings.catch_warnings():  # e.g. "Detected pickle protocol 4": our message below says it once
            warnings.simplefilter("ignore")
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:  # a pickle with objects or code: never loaded, and never suggested
        raise DanFerError(f"cannot read checkpoint {path}: it holds more than tensors, numbers and strings "
                          f"({_unpickling_detail(exc)}); dan-fer never loads such files") from exc
    except Exception as exc:  # corrupt zip, truncated file ...
        first = first_line(exc)
        if "weights_only" in first:
            first = _unpickling_detail(exc)
        raise DanFerError(f"cannot read checkpoint {path}: {first}") from exc
    if not isinstance(obj, dict):
        raise DanFerError(f"{path} is not a checkpoint dict (got {type(obj).__name__})")
    return obj


def _load_error(exc: Exception) -> str:
    """torch's load_state_dict message as one short line: the first size mismatch, else the first missing/unexpected key."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    lines = [line for line in lines if not line.startswith("Error(s) in loading state_dict")] or lines or [type(exc).__name__]
    detail = next((line for line in lines if line.startswith("size mismatch")), lines[0])
    if m := re.match(r"((?:Missing|Unexpected) key\(s\) in state_dict): (.*)$", detail):
        keys = re.findall(r'"([^"]*)"', m.group(2))
        detail = f"{m.group(1)}: {keys[0]!r}" + (f" and {len(keys) - 1} more" if len(keys) > 1 else "") if keys else detail
    return detail if len(detail) <= 240 else detail[:237] + "..."


def _bad(path: Path, field: str, value: Any, expected: str) -> DanFerError:
    shown = " ".join(repr(value).split()) if not isinstance(value, torch.Tensor) else f"a tensor of shape {list(value.shape)}"
    return DanFerError(f"{path}: config field {field} is {shown if len(shown) <= 40 else shown[:37] + '...'}, expected {expected}")


def _is_int(v: Any, lo: int, hi: int) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi


def _numbers(v: Any, n: int) -> bool:
    return (isinstance(v, (tuple, list)) and len(v) == n
            and all(isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) for x in v))


def config_from_checkpoint(raw: Any, path: Path) -> DANConfig:
    """A checkpoint's ``config`` as a DANConfig, every field checked before a network is built from it."""
    if not isinstance(raw, Mapping):
        raise DanFerError(f"{path}: 'config' is a {type(raw).__name__}, not a dict")
    if not all(isinstance(k, str) for k in raw):
        raise DanFerError(f"{path}: 'config' has keys that are not names")
    names = raw.get("class_names", DANConfig.class_names)
    if not isinstance(names, (list, tuple)) or not 1 <= len(names) <= 10_000 or not all(isinstance(c, str) for c in names):
        raise _bad(path, "class_names", names, "a list of class names")
    checks = {  # field: (test, what it must be); ranges keep a hostile file from building a huge network
        "num_heads": (lambda v: _is_int(v, 1, 64), "a whole number from 1 to 64"),
        "input_size": (lambda v: _is_int(v, 32, 2048), "a whole number from 32 to 2048"),
        "color": (lambda v: v in ("rgb", "gray"), "'rgb' or 'gray'"),
        "feat_dim": (lambda v: v == 512, "512 (ResNet-18 features)"),  # older checkpoints carry it; the backbone sizes the heads now
        "reduced_dim": (lambda v: _is_int(v, 1, 4096), "a whole number from 1 to 4096"),
        "channel_reduction": (lambda v: _is_int(v, 1, 512), "a whole number from 1 to 512"),
        "mean": (lambda v: _numbers(v, 3), "three numbers"),
        "std": (lambda v: _numbers(v, 3) and all(x > 0 for x in v), "three positive numbers"),
        "train_dataset": (lambda v: isinstance(v, str), "a name"),
        "native_size": (lambda v: v is None or _is_int(v, 1, 2048), "nothing or a whole number of pixels"),
        "template": (lambda v: v is None or (isinstance(v, (list, tuple)) and len(v) == 5 and all(_numbers(p, 2) for p in v)),
                     "five [x, y] points"),
    }
    for field, (ok, expected) in checks.items():
        if field in raw and not ok(raw[field]):
            raise _bad(path, field, raw[field], expected)
    return DANConfig.from_dict(dict(raw))


def _state_dict(raw: Any, path: Path, key: str) -> dict[str, torch.Tensor]:
    if not isinstance(raw, Mapping):
        raise DanFerError(f"{path}: '{key}' is a {type(raw).__name__}, not a dict of weights")
    bad = next((k for k, v in raw.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)), None)
    if bad is not None:
        raise DanFerError(f"{path}: '{key}' entry {str(bad)[:60]!r} is a {type(raw[bad]).__name__}, not a tensor")
    return {k: v.float() if v.is_floating_point() else v for k, v in raw.items()}


def _check_shapes(config: DANConfig, state: Mapping[str, torch.Tensor], path: Path) -> None:
    """Compare the weights with the network the config describes, built on the meta device (no memory),
    so a hostile config never allocates a huge network before its weights are found not to fit."""
    with torch.device("meta"):
        expected = {k: tuple(v.shape) for k, v in DAN(config).state_dict().items()}
    for key, shape in expected.items():
        if key in state and tuple(state[key].shape) != shape:
            raise DanFerError(f"{path} does not match its own config: size mismatch for {key}: "
                              f"{list(state[key].shape)} in the file, {list(shape)} in the network")
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    for what, keys in (("missing", missing), ("unexpected", unexpected)):
        if keys:
            more = f" and {len(keys) - 1} more" if len(keys) > 1 else ""
            raise DanFerError(f"{path} does not match its own config: {what} weight {keys[0][:80]!r}{more}")


def _build(config: DANConfig, state: dict[str, torch.Tensor], path: str | Path, problem: str) -> DAN:
    """A DAN of ``config`` holding ``state`` (shapes checked first), in eval mode; one error line otherwise."""
    _check_shapes(config, state, path)
    model = DAN(config)
    try:
        model.load_state_dict(state)
    except (RuntimeError, TypeError, ValueError) as exc:
        raise DanFerError(f"{path} {problem}: {_load_error(exc)}") from exc
    return model.eval()


def load_model(path: str | Path, *, use_ema: bool = True) -> DAN:
    """Rebuild a DAN from one of our checkpoints (EMA weights when present and better on validation)."""
    return model_from_checkpoint(load_file(path), path, use_ema=use_ema)


def model_from_checkpoint(ckpt: dict[str, Any], path: str | Path, *, use_ema: bool = True) -> DAN:
    """``load_model`` for a checkpoint dict already read with ``load_file`` (``path`` names it in errors)."""
    path = Path(path)
    if "config" not in ckpt or "model" not in ckpt:
        if "model_state_dict" in ckpt:
            raise DanFerError(f"{path} looks like an official DAN checkpoint: convert it with `dan-fer import-checkpoint`")
        raise DanFerError(f"{path} is not a dan-fer checkpoint (no 'config'/'model' keys)")
    config = config_from_checkpoint(ckpt["config"], path)
    # training records which of the EMA and the raw weights scored better on validation
    ema, prefer = ckpt.get("ema"), ckpt.get("prefer_ema", True)
    use_ema = use_ema and ema is not None and not (isinstance(ema, Mapping) and not ema) and prefer is not False
    key = "ema" if use_ema else "model"
    state = _state_dict(ckpt[key], path, key)
    return _build(config, state, path, "does not match its own config")


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
    state = convert_official_state_dict(_state_dict(state, path, "model_state_dict"))
    num_heads = len({k.split(".")[1] for k in state if k.startswith("heads.")})
    if not 1 <= num_heads <= 64:
        raise DanFerError(f"{path} has {num_heads} attention heads; an official DAN checkpoint has 1 to 64")
    class_names = BY_DATASET[dataset]
    if "fc.weight" in state and state["fc.weight"].shape[0] != len(class_names):
        raise DanFerError(
            f"{path} has {state['fc.weight'].shape[0]} classes but --dataset {dataset} has {len(class_names)}"
        )
    config = DANConfig(
        class_names=class_names, num_heads=num_heads, input_size=224, color="rgb",
        mean=IMAGENET_MEAN, std=IMAGENET_STD, train_dataset=dataset,
    )
    return _build(config, state, path, "holds weights that do not fit DAN")

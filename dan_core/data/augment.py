"""Batched augmentation on the training device: one grid_sample does resize, flip,
rotation, scale and translation for the whole batch; then brightness/contrast and
random erasing. Input uint8 (B, 1 or 3, h, w) of any size, output float (B, 3, S, S) in [0, 1].
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from dan_core.cli_fields import option

_G = "augmentation"


@dataclass
class AugmentConfig:
    flip: float = option(0.5, "probability of a horizontal flip", group=_G)
    rotation: float = option(15.0, "max rotation in degrees, either way", group=_G)
    scale: tuple[float, float] = option((0.85, 1.15), "zoom range (>1 zooms in)", group=_G)
    translate: float = option(0.1, "max shift as a fraction of the image", group=_G)
    affine_p: float = option(1.0, "probability that rotation/scale/shift are applied", group=_G)
    brightness: float = option(0.25, "brightness jitter, +- fraction", group=_G)
    contrast: float = option(0.25, "contrast jitter, +- fraction", group=_G)
    erase_p: float = option(0.5, "random erasing probability (paper: RandomErasing)", group=_G)
    erase_area: tuple[float, float] = option((0.02, 0.2), "random erasing area as a fraction of the image", group=_G)


_LUMA = (0.299, 0.587, 0.114)


def _prepare(images: torch.Tensor, gray: bool) -> torch.Tensor:
    """uint8 (B, 1|3, h, w) -> float in [0, 1]; RGB becomes one luma channel when ``gray``."""
    x = images.float().div_(255)
    if gray and x.size(1) == 3:
        x = (x * x.new_tensor(_LUMA).view(1, 3, 1, 1)).sum(dim=1, keepdim=True)  # (B, 1, h, w)
    return x


def _to_rgb(x: torch.Tensor) -> torch.Tensor:
    return x.expand(-1, 3, -1, -1).contiguous() if x.size(1) == 1 else x  # (B, 3, S, S)


def to_float(images: torch.Tensor, size: int, gray: bool = False) -> torch.Tensor:
    """uint8 (B, 1|3, h, w) -> float (B, 3, size, size) in [0, 1], no augmentation."""
    x = _prepare(images, gray)
    if x.shape[-1] != size or x.shape[-2] != size:
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=x.shape[-1] > size)
    return _to_rgb(x)


def _affine_theta(b: int, cfg: AugmentConfig, device: torch.device, gen: torch.Generator | None) -> torch.Tensor:
    def uniform(lo: float, hi: float) -> torch.Tensor:
        return torch.rand(b, device=device, generator=gen) * (hi - lo) + lo

    apply = torch.rand(b, device=device, generator=gen) < cfg.affine_p
    angle = torch.where(apply, uniform(-cfg.rotation, cfg.rotation), torch.zeros(b, device=device)) * math.pi / 180
    zoom = torch.where(apply, uniform(*cfg.scale), torch.ones(b, device=device))
    tx = torch.where(apply, uniform(-cfg.translate, cfg.translate) * 2, torch.zeros(b, device=device))
    ty = torch.where(apply, uniform(-cfg.translate, cfg.translate) * 2, torch.zeros(b, device=device))
    flip = torch.where(torch.rand(b, device=device, generator=gen) < cfg.flip, -1.0, 1.0)
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    theta = torch.stack(
        [torch.stack([cos * flip, -sin, tx], dim=1), torch.stack([sin * flip, cos, ty], dim=1)], dim=1
    )  # (B, 2, 3) output->input sampling grid
    return theta


def _erase(x: torch.Tensor, cfg: AugmentConfig, gen: torch.Generator | None) -> torch.Tensor:
    b, _, h, w = x.shape
    dev = x.device
    area = (torch.rand(b, device=dev, generator=gen) * (cfg.erase_area[1] - cfg.erase_area[0]) + cfg.erase_area[0]) * h * w
    log_ratio = (torch.rand(b, device=dev, generator=gen) * 2 - 1) * math.log(3.0)
    ratio = torch.exp(log_ratio)
    eh = torch.sqrt(area * ratio).clamp(1, h)
    ew = torch.sqrt(area / ratio).clamp(1, w)
    y0 = torch.rand(b, device=dev, generator=gen) * (h - eh)
    x0 = torch.rand(b, device=dev, generator=gen) * (w - ew)
    ys = torch.arange(h, device=dev).view(1, h, 1)
    xs = torch.arange(w, device=dev).view(1, 1, w)
    box = (ys >= y0.view(b, 1, 1)) & (ys < (y0 + eh).view(b, 1, 1)) & (xs >= x0.view(b, 1, 1)) & (xs < (x0 + ew).view(b, 1, 1))
    box &= (torch.rand(b, device=dev, generator=gen) < cfg.erase_p).view(b, 1, 1)
    noise = torch.rand(x.shape, device=dev, generator=gen, dtype=x.dtype)
    return torch.where(box.unsqueeze(1), noise, x)  # box: (B, 1, H, W)


def augment(images: torch.Tensor, size: int, cfg: AugmentConfig, gen: torch.Generator | None = None,
            gray: bool = False) -> torch.Tensor:
    """Augment a uint8 batch (B, 1|3, h, w) on its own device -> float (B, 3, size, size) in [0, 1]."""
    b = images.size(0)
    x = _prepare(images, gray)
    c = x.size(1)
    if x.shape[-1] > 2 * size:  # shrink large sources first so grid_sample does not alias
        x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    theta = _affine_theta(b, cfg, x.device, gen)
    grid = F.affine_grid(theta, [b, c, size, size], align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    if cfg.brightness or cfg.contrast:
        bright = 1 + (torch.rand(b, 1, 1, 1, device=x.device, generator=gen) * 2 - 1) * cfg.brightness
        contrast = 1 + (torch.rand(b, 1, 1, 1, device=x.device, generator=gen) * 2 - 1) * cfg.contrast
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        x = ((x - mean) * contrast + mean) * bright
    x = x.clamp_(0, 1)
    if cfg.erase_p > 0:
        x = _erase(x, cfg, gen)
    return _to_rgb(x)

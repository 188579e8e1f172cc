"""ResNet-18 backbone with torchvision's parameter names (conv1, bn1, layer1..layer4).

Only the feature extractor: no global pool, no classifier. ``load_resnet18_weights``
accepts a torchvision ``resnet18`` state dict (ImageNet) or an MS-Celeb-1M one with the
same names, so users can start from weights they already have.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, in_channels: int, channels: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.downsample: nn.Module | None = None
        if stride != 1 or in_channels != channels:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_channels, channels, 1, stride=stride, bias=False),
                nn.BatchNorm2d(channels),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


# The backbone's stages in forward order, each with the modules it is made of.
STAGES: dict[str, tuple[str, ...]] = {"stem": ("conv1", "bn1"), "layer1": ("layer1",), "layer2": ("layer2",),
                                      "layer3": ("layer3",), "layer4": ("layer4",)}


class ResNet18Features(nn.Module):
    """conv1 → bn1 → relu → maxpool → layer1..4; output (B, 512, H/32, W/32)."""

    def __init__(self, widths: tuple[int, int, int, int] = (64, 128, 256, 512), blocks: int = 2) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, widths[0], 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        in_ch = widths[0]
        layers = []
        for i, width in enumerate(widths):
            stride = 1 if i == 0 else 2
            layer = [BasicBlock(in_ch, width, stride)] + [BasicBlock(width, width) for _ in range(blocks - 1)]
            layers.append(nn.Sequential(*layer))
            in_ch = width
        self.layer1, self.layer2, self.layer3, self.layer4 = layers
        self.out_channels = widths[-1]
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def stages_upto(self, stage: str) -> tuple[nn.Module, ...]:
        """The modules of every stage up to and including ``stage`` (a key of ``STAGES``), in forward order."""
        names = list(STAGES)
        return tuple(getattr(self, module) for name in names[: names.index(stage) + 1] for module in STAGES[name])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer1(x)
        x = self.layer2(x)
        x = self.layer3(x)
        return self.layer4(x)


def load_resnet18_weights(backbone: ResNet18Features, state_dict: Mapping[str, torch.Tensor]) -> list[str]:
    """Load torchvision-named ResNet-18 weights (``fc.*`` ignored; ``module.`` stripped).

    Returns the names of backbone parameters that were not in ``state_dict``; raises
    ``ValueError`` when nothing matches or a shape differs.
    """
    cleaned = {k.removeprefix("module."): v for k, v in state_dict.items() if not k.removeprefix("module.").startswith("fc.")}
    own = backbone.state_dict()
    usable = {k: v for k, v in cleaned.items() if k in own}
    if not usable:
        raise ValueError("no ResNet-18 parameter names (conv1.weight, layer1.0.conv1.weight, ...) found in the file")
    for k, v in usable.items():
        if tuple(v.shape) != tuple(own[k].shape):
            raise ValueError(f"shape mismatch for {k}: file {tuple(v.shape)} vs model {tuple(own[k].shape)}")
    result = backbone.load_state_dict(usable, strict=False)
    return list(result.missing_keys)

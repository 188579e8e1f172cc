"""DAN's multi-head cross attention network (MAN), building blocks first: spatial attention, channel
attention, and the head that chains them. Module names follow the official implementation
(sa.conv1x1, ca.attention), which keeps loading the paper's checkpoints a pure renaming.
"""

from __future__ import annotations

import torch
from torch import nn


class SpatialAttention(nn.Module):
    """1x1 reduce, then 3x3 + 1x3 + 3x1 convs summed, ReLU, summed over channels.

    The map is a sum over ``channels`` ReLU outputs, so with unit BatchNorm gains it starts near
    0.7 * channels (about 340 for ResNet-18): every head vector is then hundreds, the softmax across
    heads saturates and the logits' BatchNorm divides the backbone's gradient by that scale, and a
    network trained from random weights sits at the class prior for hundreds of steps.
    ``init_scale`` gives the three branches' BatchNorm gains 1 / channels, so the map starts near
    0.7 and the attention first passes the features on almost unchanged; the gains then learn
    their own scale. (Pretrained and the paper's checkpoints load their own gains.)
    """

    def __init__(self, channels: int, reduced: int) -> None:
        super().__init__()
        self.conv1x1 = nn.Sequential(nn.Conv2d(channels, reduced, 1), nn.BatchNorm2d(reduced))
        self.conv_3x3 = nn.Sequential(nn.Conv2d(reduced, channels, 3, padding=1), nn.BatchNorm2d(channels))
        self.conv_1x3 = nn.Sequential(nn.Conv2d(reduced, channels, (1, 3), padding=(0, 1)), nn.BatchNorm2d(channels))
        self.conv_3x1 = nn.Sequential(nn.Conv2d(reduced, channels, (3, 1), padding=(1, 0)), nn.BatchNorm2d(channels))
        self.relu = nn.ReLU()

    def init_scale(self) -> None:
        """Start the map near 0.7 instead of 0.7 * channels (see the class docstring)."""
        for branch in (self.conv_3x3, self.conv_1x3, self.conv_3x1):
            nn.init.constant_(branch[1].weight, 1.0 / branch[1].num_features)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y = self.conv1x1(x)
        y = self.relu(self.conv_3x3(y) + self.conv_1x3(y) + self.conv_3x1(y))
        attn = y.sum(dim=1, keepdim=True)  # (B, 1, h, w)
        return x * attn, attn


class ChannelAttention(nn.Module):
    """Global average pool, then Linear-BN-ReLU-Linear-sigmoid gates the pooled vector."""

    def __init__(self, channels: int, reduction: int) -> None:
        super().__init__()
        hidden = channels // reduction
        self.attention = nn.Sequential(
            nn.Linear(channels, hidden),
            nn.BatchNorm1d(hidden),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, channels),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = x.mean(dim=(2, 3))  # (B, C)
        return pooled * self.attention(pooled)


class CrossAttentionHead(nn.Module):
    """One head of DAN's multi-head cross attention network (MAN): spatial, then channel attention.

    Takes the backbone map (B, C, h, w) and returns the head vector (B, C) and the head's spatial
    attention map (B, 1, h, w), the map the app draws on the face.

    Args:
        channels: channels of the backbone map (ResNet-18: 512).
        reduced: bottleneck channels of the spatial attention's 1x1 convolution (paper: 256).
        reduction: channel attention reduction ratio (512 -> 512 / reduction -> 512).
    """

    def __init__(self, channels: int, reduced: int, reduction: int) -> None:
        super().__init__()
        self.sa = SpatialAttention(channels, reduced)
        self.ca = ChannelAttention(channels, reduction)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
                nn.init.zeros_(m.bias)
            elif isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d)):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, std=0.001)
                nn.init.zeros_(m.bias)
        self.sa.init_scale()

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        attended, attn = self.sa(x)
        return self.ca(attended), attn

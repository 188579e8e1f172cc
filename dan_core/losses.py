"""DAN's two auxiliary losses, each a small module; the device comes from the inputs."""

from __future__ import annotations

import torch
from torch import nn


class AffinityLoss(nn.Module):
    """Pull each pooled feature to its class centre, relative to the spread of the centres.

    loss = mean_i ||f_i - c_{y_i}||^2 / sum_d Var_k(c_{k,d})

    The centres are learnable; dividing by their variance pushes them apart.
    """

    def __init__(self, num_classes: int, feat_dim: int = 512) -> None:
        super().__init__()
        self.centers = nn.Parameter(torch.randn(num_classes, feat_dim))

    def forward(self, features: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        pooled = features.float().mean(dim=(2, 3)) if features.dim() == 4 else features.float()  # (B, D)
        centers = self.centers.to(pooled.dtype)
        dist = (pooled - centers[labels]).pow(2).sum(dim=1)  # (B,)
        return dist.mean() / centers.var(dim=0).sum()


class PartitionLoss(nn.Module):
    """log(1 + K / mean variance across the K heads): heads that agree are penalised."""

    def forward(self, heads: torch.Tensor) -> torch.Tensor:
        num_heads = heads.size(1)  # heads: (B, K, D)
        if num_heads <= 1:
            return heads.new_zeros(())
        var = heads.float().var(dim=1).mean()
        return torch.log1p(num_heads / var)


def soft_cross_entropy(logits: torch.Tensor, target: torch.Tensor, label_smoothing: float = 0.0) -> torch.Tensor:
    """Cross-entropy against a probability target (B, C), e.g. FER+ vote distributions."""
    if label_smoothing:
        target = target * (1 - label_smoothing) + label_smoothing / target.size(1)
    return -(target * torch.log_softmax(logits.float(), dim=1)).sum(dim=1).mean()




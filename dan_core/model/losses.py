"""DAN's losses, each a small module; the device comes from the inputs.

AffinityLoss and PartitionLoss are the paper's two auxiliary terms; ClassAwareLoss is the
classification term with the remedies for unbalanced classes (logit adjustment, class weights).
"""

from __future__ import annotations

import numpy as np
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


class ClassAwareLoss(nn.Module):
    """Cross-entropy against a probability target, with two remedies for rare classes.

    Logit adjustment (Menon et al., 2021) trains on ``logits + tau * log(prior)``: a rare class must
    win by a margin during training, so the plain logits that inference uses are those of a balanced
    classifier. ``tau = 1`` is Balanced Softmax (Ren et al., 2020). Class weights scale each class's
    term by ``(1 / prior) ** power``, normalised to average 1 under the training distribution.
    """

    def __init__(self, prior: np.ndarray, tau: float = 0.0, weight_power: float = 0.0, label_smoothing: float = 0.0) -> None:
        super().__init__()
        p = torch.as_tensor(np.asarray(prior), dtype=torch.float32)  # (C,) sums to 1
        weight = p.pow(-weight_power)
        self.register_buffer("adjust", tau * p.log())  # (C,)
        self.register_buffer("weight", weight / (weight * p).sum())  # (C,)
        self.label_smoothing = label_smoothing

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """logits (B, C); target (B, C) probabilities (one-hot for hard labels)."""
        if self.label_smoothing:
            target = target * (1 - self.label_smoothing) + self.label_smoothing / target.size(1)
        logp = torch.log_softmax(logits.float() + self.adjust, dim=1)  # (B, C)
        weighted = target * self.weight  # (B, C)
        return -(weighted * logp).sum() / weighted.sum().clamp_min(1e-8)


def make_target(labels: torch.Tensor, soft: torch.Tensor, mode: str) -> torch.Tensor:
    """(B, C) training target: ``soft`` the vote distribution, ``sample`` a label drawn from it
    (FER+'s probabilistic label drawing), ``hard`` the one-hot majority label."""
    if mode == "soft":
        return soft
    if mode == "sample":
        one_hot = nn.functional.one_hot(labels, soft.size(1)).to(soft.dtype)
        probs = torch.where(soft.sum(dim=1, keepdim=True) > 0, soft, one_hot)  # (B, C)
        labels = torch.multinomial(probs, 1).squeeze(1)  # (B,)
    return nn.functional.one_hot(labels, soft.size(1)).to(soft.dtype)


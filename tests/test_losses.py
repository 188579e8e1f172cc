"""The two DAN losses against values computed by hand."""

from __future__ import annotations

import math

import torch

from dan_core.model.losses import AffinityLoss, PartitionLoss, soft_cross_entropy


def test_affinity_loss_hand_computed() -> None:
    loss = AffinityLoss(num_classes=2, feat_dim=2)
    with torch.no_grad():
        loss.centers.copy_(torch.tensor([[0.0, 0.0], [2.0, 4.0]]))
    # pooled features: a 1x1 map is its own mean
    feats = torch.tensor([[1.0, 1.0], [2.0, 2.0]]).view(2, 2, 1, 1)
    labels = torch.tensor([0, 1])
    # distances: |(1,1)-(0,0)|^2 = 2 ; |(2,2)-(2,4)|^2 = 4 -> mean 3
    # centre variance per dim (unbiased, 2 samples): var(0,2)=2, var(0,4)=8 -> sum 10
    assert math.isclose(loss(feats, labels).item(), 3 / 10, rel_tol=1e-6)


def test_affinity_loss_pools_spatial_maps_and_follows_input_device() -> None:
    loss = AffinityLoss(num_classes=3, feat_dim=4)
    feats = torch.zeros(2, 4, 3, 3)
    feats[0, :, 0, 0] = 9.0  # mean over 9 cells = 1
    value = loss(feats, torch.tensor([0, 2]))
    c = loss.centers.detach()
    expected = (((torch.ones(4) - c[0]) ** 2).sum() + (c[2] ** 2).sum()) / 2 / c.var(dim=0).sum()
    assert torch.allclose(value, expected)
    assert value.device == feats.device


def test_partition_loss_hand_computed() -> None:
    # one sample, K=2 heads, 2 dims: heads (0, 0) and (2, 4): var over heads = (2, 8), mean 5
    heads = torch.tensor([[[0.0, 0.0], [2.0, 4.0]]])
    assert math.isclose(PartitionLoss()(heads).item(), math.log(1 + 2 / 5), rel_tol=1e-6)


def test_partition_loss_is_zero_for_one_head() -> None:
    assert PartitionLoss()(torch.rand(3, 1, 8)).item() == 0.0


def test_partition_loss_prefers_diverse_heads() -> None:
    same = torch.ones(4, 4, 16)
    diverse = torch.randn(4, 4, 16) * 3
    assert PartitionLoss()(diverse) < PartitionLoss()(same + torch.randn(4, 4, 16) * 0.01)


def test_soft_cross_entropy_equals_hard_for_one_hot() -> None:
    logits = torch.randn(5, 8)
    y = torch.tensor([0, 3, 7, 1, 2])
    hard = torch.nn.functional.cross_entropy(logits, y)
    assert torch.allclose(soft_cross_entropy(logits, torch.nn.functional.one_hot(y, 8).float()), hard)

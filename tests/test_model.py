"""DAN model: shapes, gradients, learning, torchvision-compatible names."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from dan_core.model.dan import DAN, DANConfig
from dan_core.model.losses import AffinityLoss, PartitionLoss
from dan_core.model.resnet import ResNet18Features, load_resnet18_weights


@pytest.mark.parametrize("num_heads,size,num_classes", [(1, 64, 7), (2, 112, 8), (4, 112, 8), (4, 224, 7)])
def test_output_shapes(num_heads: int, size: int, num_classes: int) -> None:
    cfg = DANConfig(class_names=tuple(f"c{i}" for i in range(num_classes)), num_heads=num_heads, input_size=size)
    model = DAN(cfg).eval()
    out = model(torch.rand(2, 3, size, size))
    side = -(-size // 32)  # ceil: stride-32 backbone
    assert out.logits.shape == (2, num_classes)
    assert out.features.shape == (2, 512, side, side)
    assert out.heads.shape == (2, num_heads, 512)
    assert out.attention.shape == (2, num_heads, side, side)
    assert torch.isfinite(out.logits).all()


def test_attention_map_is_4x4_at_112() -> None:
    out = DAN(DANConfig(input_size=112)).eval()(torch.rand(1, 3, 112, 112))
    assert out.attention.shape[-2:] == (4, 4)


def test_every_parameter_gets_a_gradient() -> None:
    model = DAN(DANConfig(num_heads=4))
    affinity = AffinityLoss(8)
    x = torch.rand(4, 3, 64, 64)
    y = torch.tensor([0, 1, 2, 3])
    out = model(x)
    loss = nn.functional.cross_entropy(out.logits, y) + affinity(out.features, y) + PartitionLoss()(out.heads)
    loss.backward()
    for name, p in list(model.named_parameters()) + list(affinity.named_parameters()):
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name


def test_learns_a_tiny_synthetic_set() -> None:
    """100% training accuracy on 4 classes of distinct patterns within 80 steps."""
    torch.manual_seed(0)
    n, size = 16, 32
    labels = torch.arange(n) % 4
    images = torch.rand(n, 3, size, size) * 0.2
    for i, c in enumerate(labels.tolist()):  # one bright quadrant per class
        r, q = divmod(c, 2)
        images[i, :, r * 16 : (r + 1) * 16, q * 16 : (q + 1) * 16] += 0.8
    model = DAN(DANConfig(class_names=("a", "b", "c", "d"), num_heads=2, input_size=size))
    affinity = AffinityLoss(4)
    opt = torch.optim.Adam(list(model.parameters()) + list(affinity.parameters()), lr=1e-3)
    for _step in range(80):
        model.train()
        out = model(images)
        loss = nn.functional.cross_entropy(out.logits, labels) + affinity(out.features, labels) + PartitionLoss()(out.heads)
        assert torch.isfinite(loss)
        opt.zero_grad()
        loss.backward()
        opt.step()
        model.eval()
        with torch.no_grad():
            acc = (model(images).logits.argmax(1) == labels).float().mean().item()
        if acc == 1.0:
            break
    assert acc == 1.0


def test_backbone_uses_torchvision_names() -> None:
    names = set(ResNet18Features().state_dict())
    for key in ("conv1.weight", "bn1.running_mean", "layer1.0.conv1.weight", "layer2.0.downsample.0.weight",
                "layer2.0.downsample.1.running_var", "layer4.1.bn2.bias"):
        assert key in names
    # torchvision resnet18 less fc: conv1, bn1, 8 blocks x (2 convs + 2 BNs), 3 downsamples x (conv + BN)
    assert len([k for k in names if k.endswith("weight")]) == 2 + 8 * 4 + 3 * 2


def test_load_resnet18_weights_from_a_torchvision_state_dict() -> None:
    src = ResNet18Features()
    state = {f"module.{k}": v + 1.0 if v.is_floating_point() else v for k, v in src.state_dict().items()}
    state["fc.weight"] = torch.zeros(1000, 512)
    state["fc.bias"] = torch.zeros(1000)
    dst = ResNet18Features()
    missing = load_resnet18_weights(dst, state)
    assert missing == []
    assert torch.equal(dst.conv1.weight, src.conv1.weight + 1.0)
    with pytest.raises(ValueError, match="no ResNet-18 parameter names"):
        load_resnet18_weights(dst, {"foo": torch.zeros(1)})

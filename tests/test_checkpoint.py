"""Checkpoints: safe loading, round trips, and the paper's official DAN layout."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from dan_core.classes import AFFECTNET8, RAFDB
from dan_core.errors import DanFerError
from dan_core.model.dan import DAN, IMAGENET_MEAN, IMAGENET_STD, DANConfig
from dan_core.model.resnet import ResNet18Features
from dan_core.training.checkpoint import import_official, load_model, save_model


# --- a stand-alone copy of the official DAN network (Wen et al., networks/dan.py), for reference
class _OfficialSA(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1x1 = nn.Sequential(nn.Conv2d(512, 256, kernel_size=1), nn.BatchNorm2d(256))
        self.conv_3x3 = nn.Sequential(nn.Conv2d(256, 512, kernel_size=3, padding=1), nn.BatchNorm2d(512))
        self.conv_1x3 = nn.Sequential(nn.Conv2d(256, 512, kernel_size=(1, 3), padding=(0, 1)), nn.BatchNorm2d(512))
        self.conv_3x1 = nn.Sequential(nn.Conv2d(256, 512, kernel_size=(3, 1), padding=(1, 0)), nn.BatchNorm2d(512))
        self.relu = nn.ReLU()

    def forward(self, x):
        y = self.conv1x1(x)
        y = self.relu(self.conv_3x3(y) + self.conv_1x3(y) + self.conv_3x1(y))
        y = y.sum(dim=1, keepdim=True)
        return x * y


class _OfficialCA(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.attention = nn.Sequential(nn.Linear(512, 32), nn.BatchNorm1d(32), nn.ReLU(inplace=True),
                                       nn.Linear(32, 512), nn.Sigmoid())

    def forward(self, sa):
        sa = self.gap(sa)
        sa = sa.view(sa.size(0), -1)
        return sa * self.attention(sa)


class _OfficialHead(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.sa = _OfficialSA()
        self.ca = _OfficialCA()

    def forward(self, x):
        return self.ca(self.sa(x))


class _OfficialDAN(nn.Module):
    def __init__(self, num_class: int = 7, num_head: int = 4) -> None:
        super().__init__()
        resnet = ResNet18Features()  # same children order as torchvision's resnet18 without avgpool/fc
        self.features = nn.Sequential(*list(resnet.children()))
        self.num_head = num_head
        for i in range(num_head):
            setattr(self, f"cat_head{i}", _OfficialHead())
        self.fc = nn.Linear(512, num_class)
        self.bn = nn.BatchNorm1d(num_class)

    def forward(self, x):
        x = self.features(x)
        heads = torch.stack([getattr(self, f"cat_head{i}")(x) for i in range(self.num_head)]).permute([1, 0, 2])
        if heads.size(1) > 1:
            heads = F.log_softmax(heads, dim=1)
        return self.bn(self.fc(heads.sum(dim=1)))


def _randomise(module: nn.Module) -> None:
    torch.manual_seed(1)
    with torch.no_grad():
        for name, t in module.state_dict().items():
            if name.endswith("running_var"):
                t.copy_(torch.rand_like(t) + 0.5)
            elif t.is_floating_point():
                t.copy_(torch.randn_like(t) * 0.05)


@pytest.mark.parametrize("dataset,classes", [("rafdb", RAFDB), ("affectnet8", AFFECTNET8)])
def test_import_official_checkpoint_matches_paper_network(tmp_path: Path, dataset: str, classes: tuple[str, ...]) -> None:
    ref = _OfficialDAN(num_class=len(classes))
    _randomise(ref)
    ref.eval()
    keys = list(ref.state_dict())
    assert "features.0.weight" in keys and "features.7.1.bn2.running_var" in keys
    assert "cat_head3.sa.conv_1x3.0.weight" in keys and "cat_head0.ca.attention.3.bias" in keys
    path = tmp_path / "rafdb_epoch21_acc0.897_bacc0.8275.pth"
    torch.save({"iter": 21, "model_state_dict": ref.state_dict(), "optimizer_state_dict": {}}, path)

    model = import_official(path, dataset)
    assert model.config.class_names == classes
    assert model.config.input_size == 224 and model.config.color == "rgb"
    x = torch.rand(3, 3, 224, 224)
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    with torch.no_grad():
        expected = ref((x - mean) / std).softmax(1)
        got = model(x).logits.softmax(1)
    assert torch.allclose(got, expected, atol=1e-6)


def test_import_rejects_wrong_class_count(tmp_path: Path) -> None:
    ref = _OfficialDAN(num_class=7)
    path = tmp_path / "affectnet.pth"
    torch.save({"model_state_dict": ref.state_dict()}, path)
    with pytest.raises(DanFerError, match="7 classes but --dataset affectnet8 has 8"):
        import_official(path, "affectnet8")


def test_save_and_load_round_trip_half(tmp_path: Path) -> None:
    model = DAN(DANConfig(num_heads=2, color="gray", input_size=64)).eval()
    path = tmp_path / "m.pt"
    save_model(model, path, half=True)
    loaded = load_model(path)
    assert loaded.config == model.config
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(loaded(x).logits.softmax(1), model(x).logits.softmax(1), atol=2e-3)


def test_checkpoints_whose_config_names_feat_dim_still_load(tmp_path: Path) -> None:
    """Checkpoints made while DANConfig had a feat_dim field (always 512) load; another value is refused."""
    model = DAN(DANConfig(num_heads=2, input_size=64)).eval()
    path = tmp_path / "old.pt"
    save_model(model, path)
    ckpt = torch.load(path, weights_only=True)
    ckpt["config"]["feat_dim"] = 512
    torch.save(ckpt, path)
    assert load_model(path).config == model.config
    ckpt["config"]["feat_dim"] = 256
    torch.save(ckpt, path)
    with pytest.raises(DanFerError, match="feat_dim"):
        load_model(path)


def test_corrupt_and_unsafe_files_give_one_line_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint at all")
    with pytest.raises(DanFerError, match="cannot read checkpoint"):
        load_model(bad)
    unsafe = tmp_path / "unsafe.pt"
    with unsafe.open("wb") as f:
        pickle.dump({"model": np.random.default_rng(0)}, f)  # arbitrary objects: refused by weights_only
    with pytest.raises(DanFerError) as info:
        load_model(unsafe)
    assert "\n" not in str(info.value)
    with pytest.raises(DanFerError, match="not found"):
        load_model(tmp_path / "missing.pt")


def test_official_file_given_to_load_model_says_what_to_do(tmp_path: Path) -> None:
    path = tmp_path / "official.pth"
    torch.save({"model_state_dict": {}}, path)
    with pytest.raises(DanFerError, match="import-checkpoint"):
        load_model(path)


def test_half_checkpoint_keeps_values_beyond_float16_range(tmp_path: Path) -> None:
    model = DAN(DANConfig(num_heads=1, input_size=32)).eval()
    with torch.no_grad():
        model.backbone.bn1.running_var.fill_(1e6)  # > 65504: would become inf in float16
    save_model(model, tmp_path / "m.pt", half=True)
    state = torch.load(tmp_path / "m.pt", weights_only=True)["model"]
    assert state["backbone.bn1.running_var"].dtype == torch.float32
    assert state["backbone.conv1.weight"].dtype == torch.float16
    assert torch.isfinite(load_model(tmp_path / "m.pt")(torch.rand(2, 3, 32, 32)).logits).all()

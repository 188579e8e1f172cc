"""DAN: Distract your Attention Network (Wen et al.): its config, its named outputs, the network.

FCN  = ResNet-18 features (resnet.py; trained with the affinity loss, see losses.py)
MAN  = K cross-attention heads, each spatial attention then channel attention (heads.py)
AFN  = log-softmax across heads, sum, Linear, BatchNorm1d (partition loss on the heads)

The network takes RGB in [0, 1] and normalises inside, so torch and ONNX callers feed
the same tensors. Module names follow the official implementation (sa.conv1x1, ca.attention,
fc, bn), which keeps loading the paper's checkpoints a pure renaming.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from dan_core.classes import FERPLUS
from dan_core.model.heads import CrossAttentionHead
from dan_core.model.resnet import ResNet18Features

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass
class DANConfig:
    """Everything needed to rebuild a DAN, saved inside every checkpoint and exported model.

    Besides the network's sizes it carries the facts of the data it was trained on (class order,
    ``train_dataset``, the faces' ``native_size`` and the alignment ``template``), so a checkpoint or
    an ONNX file tells the app how to prepare live faces instead of the app guessing.

    Example:
        >>> from dan_core.classes import RAFDB
        >>> model = DAN(DANConfig(class_names=RAFDB, num_heads=4, input_size=224, train_dataset="rafdb"))
    """

    class_names: tuple[str, ...] = FERPLUS  # label order of the training data (see classes.py)
    num_heads: int = 4  # paper default; 1 disables the AFN softmax and partition loss
    input_size: int = 112  # 112 keeps ONNX CPU inference near 12 ms and gives 4x4 maps
    color: str = "rgb"  # "gray": callers pass the grey image in all three channels
    reduced_dim: int = 256  # spatial attention 1x1 bottleneck (paper: 512 -> 256)
    channel_reduction: int = 16  # channel attention 512 -> 32 -> 512
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    train_dataset: str = ""  # the reader's name (classes.DATASETS), e.g. "ferplus"
    template: list[list[float]] | None = field(default=None)  # 5 alignment points, [0, 1] crop coordinates
    native_size: int | None = None  # pixel size of the training faces when tiny (FER2013: 48); live crops are degraded alike

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> DANConfig:
        # fields it no longer has are ignored: e.g. feat_dim (always 512) in checkpoints made before the backbone sized the heads
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        for key in ("class_names", "mean", "std"):
            if key in known:
                known[key] = tuple(known[key])
        return cls(**known)

    def to_json(self) -> str:
        return json.dumps(self.to_dict())


class DANOutput(NamedTuple):
    """What ``DAN.forward`` returns: the class scores and what the losses and the app look at."""

    logits: torch.Tensor  # (B, C)
    features: torch.Tensor  # (B, 512, h, w) backbone map, input of the affinity loss
    heads: torch.Tensor  # (B, K, 512) head vectors (log-softmaxed across heads when K > 1)
    attention: torch.Tensor  # (B, K, h, w) spatial attention maps


class DAN(nn.Module):
    """DAN: a ResNet-18 feature map, K cross-attention heads, and their fusion into class scores.

    Inputs are RGB in [0, 1] of shape (B, 3, S, S) with S = ``config.input_size``; normalisation
    (``config.mean`` / ``config.std``) happens inside, so torch and ONNX callers feed the same
    tensors. ``forward`` returns a ``DANOutput`` (logits, backbone features, head vectors, attention).

    Args:
        config: sizes, class names and training-data facts; see ``DANConfig``.

    Example:
        >>> model = DAN(DANConfig(num_heads=4, input_size=112)).eval()
        >>> out = model(torch.rand(2, 3, 112, 112))
        >>> out.logits.shape, out.attention.shape
        (torch.Size([2, 8]), torch.Size([2, 4, 4, 4]))
    """

    def __init__(self, config: DANConfig) -> None:
        super().__init__()
        self.config = config
        self.register_buffer("mean", torch.tensor(config.mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(config.std).view(1, 3, 1, 1), persistent=False)
        self.backbone = ResNet18Features()
        c = self.backbone.out_channels  # the heads take the backbone's channels (ResNet-18: 512)
        self.heads = nn.ModuleList(
            CrossAttentionHead(c, config.reduced_dim, config.channel_reduction) for _ in range(config.num_heads)
        )
        self.fc = nn.Linear(c, config.num_classes)
        self.bn = nn.BatchNorm1d(config.num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, 3, H, W) RGB in [0, 1] -> backbone map (B, 512, H/32, W/32)."""
        return self.backbone((x - self.mean) / self.std)

    def forward_head(self, features: torch.Tensor) -> DANOutput:
        outs = [head(features) for head in self.heads]
        heads = torch.stack([o[0] for o in outs], dim=1)  # (B, K, 512)
        attention = torch.cat([o[1] for o in outs], dim=1)  # (B, K, h, w)
        if self.config.num_heads > 1:
            heads = F.log_softmax(heads, dim=1)
        logits = self.bn(self.fc(heads.sum(dim=1)))  # (B, C)
        return DANOutput(logits=logits, features=features, heads=heads, attention=attention)

    def forward(self, x: torch.Tensor) -> DANOutput:
        return self.forward_head(self.forward_features(x))

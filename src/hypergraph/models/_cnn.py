"""A small convolutional network for image-shaped input."""

from __future__ import annotations

import math
from typing import ClassVar

from torch import nn

from hypergraph.exceptions import IncompatibleModulesError
from hypergraph.models._base import TorchModel
from hypergraph.models._common import Net, Reshape, ScheduledTorchModel, optim_space
from hypergraph.registry import register
from hypergraph.spaces import Float, Int

__all__ = ["CNNModel", "image_shape"]


def image_shape(input_shape: tuple[int, ...]) -> tuple[int, int, int]:
    """``(C, H, W)`` for inputs of shape ``(C, H, W)``, ``(H, W)`` or a flat square ``(H*W,)``.

    Raises:
        IncompatibleModulesError: other shapes (the CNN cannot see them as images).
    """
    if len(input_shape) == 3:
        c, h, w = input_shape
        return int(c), int(h), int(w)
    if len(input_shape) == 2:
        return 1, int(input_shape[0]), int(input_shape[1])
    if len(input_shape) == 1:
        side = math.isqrt(int(input_shape[0]))
        if side * side == input_shape[0] and side > 1:
            return 1, side, side
    raise IncompatibleModulesError(
        f"model 'cnn' needs image-shaped features (C, H, W), (H, W) or a flat vector of a "
        f"square length such as 64 = 8x8; this dataset gives shape {tuple(input_shape)}. Use "
        "model mlp instead.")


@register("model", "cnn")
class CNNModel(ScheduledTorchModel):
    """Small convolutional network for image-shaped input (8x8 digits, 28x28, image folders).

    ``depth`` blocks of 3x3 convolution + ReLU (+ 2x2 max-pooling while the image is at least 4
    pixels wide), channels doubling from ``channels``; then a 2x2 average pool, one hidden
    layer of ``hidden`` units (the embedding) and the output layer.

    Flat square inputs (e.g. the 64 values of 8x8 digits) are reshaped to one channel.
    """

    tags: ClassVar[frozenset[str]] = TorchModel.tags | {"task:classification",
                                                       "task:regression", "model:torch"}
    requires: ClassVar[frozenset[str]] = frozenset({"features:image"})
    space = {
        "channels": Int(low=2, high=256, log=True,
                        help="channels of the first convolution (doubling per block)"),
        "depth": Int(low=1, high=5, help="convolution blocks"),
        "hidden": Int(low=8, high=2048, log=True,
                      help="units of the hidden (embedding) layer"),
        "dropout": Float(low=0.0, high=0.8, help="dropout before the output"),
        **optim_space(),
    }

    def __init__(self, channels: int = 16, depth: int = 2, hidden: int = 128,
                 dropout: float = 0.1, lr: float = 1e-3, weight_decay: float = 0.0,
                 optimizer: str = "adam", scheduler: str = "none",
                 scheduler_steps: int = 1000) -> None:
        self.channels = channels
        self.depth = depth
        self.hidden = hidden
        self.dropout = dropout
        self.lr = lr
        self.weight_decay = weight_decay
        self.optimizer = optimizer
        self.scheduler = scheduler
        self.scheduler_steps = scheduler_steps

    def build_network(self, input_shape: tuple[int, ...], num_outputs: int) -> nn.Module:
        c, h, w = image_shape(input_shape)
        layers: list[nn.Module] = [Reshape((c, h, w))]
        ch_in = c
        for i in range(self.depth):
            ch = self.channels * 2**i
            layers += [nn.Conv2d(ch_in, ch, 3, padding=1), nn.ReLU()]
            if min(h, w) >= 4:
                layers.append(nn.MaxPool2d(2))
                h, w = h // 2, w // 2
            ch_in = ch
        layers += [nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(ch_in * 4, self.hidden),
                   nn.ReLU()]
        head: list[nn.Module] = [nn.Dropout(self.dropout)] if self.dropout > 0 else []
        return Net(nn.Sequential(*layers), nn.Sequential(*head, nn.Linear(self.hidden,
                                                                          num_outputs)))

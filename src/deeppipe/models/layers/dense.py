"""Dense-layer variants from the literature: DropConnect, Maxout and the Highway layer."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from deeppipe.models.activations import make_activation, parse_activation
from deeppipe.models.meta import meta_of, tag_act
from deeppipe.registry import LAYERS


@LAYERS.register("DropConnect", aliases=("drop_connect", "DropConnectLinear"), width_args=("out_features",))
class DropConnect(nn.Linear):
    """A fully connected layer whose *weights* are dropped with probability ``p`` while training
    (Wan et al. 2013), rescaled by 1/(1-p) like inverted dropout; all weights are used in eval mode.
    One mask per batch (the paper draws one per sample, which costs a weight copy per sample)."""

    def __init__(
        self, in_features: int, out_features: int, p: float = 0.5, bias: bool = True
    ) -> None:
        if not 0.0 <= p < 1.0:
            raise ValueError(f"p must be in [0, 1), got {p}")
        super().__init__(in_features, out_features, bias=bias)
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return F.linear(x, self.weight, self.bias)
        mask = torch.empty_like(self.weight).bernoulli_(1.0 - self.p)
        return F.linear(x, self.weight * mask / (1.0 - self.p), self.bias)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, p={self.p}"


@LAYERS.register("Maxout", width_args=("out_features",))
class Maxout(nn.Module):
    """Maxout unit (Goodfellow et al. 2013): ``out_features`` outputs, each the max of ``pieces``
    affine functions of the input."""

    def __init__(
        self, in_features: int, out_features: int, pieces: int = 2, bias: bool = True
    ) -> None:
        super().__init__()
        if pieces < 1:
            raise ValueError("pieces must be >= 1")
        self.out_features, self.pieces = out_features, pieces
        self.linear = nn.Linear(in_features, out_features * pieces, bias=bias)
        tag_act(self.linear, ("maxout", {}))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.linear(x)
        return y.reshape(*y.shape[:-1], self.out_features, self.pieces).amax(dim=-1)

    def extra_repr(self) -> str:
        return f"pieces={self.pieces}"


@LAYERS.register("Highway", aliases=("highway_gate",))
class Highway(nn.Module):
    """Highway layer (Srivastava et al. 2015): y = H(x) * T(x) + x * (1 - T(x)), with the transform
    gate T(x) = sigmoid(W_T x + b_T). The gate bias starts negative (``gate_bias``) so the layer
    begins close to the identity and deep stacks still train. Size is unchanged."""

    def __init__(self, in_features: int, activation: Any = "relu", gate_bias: float = -2.0) -> None:
        super().__init__()
        self.transform = nn.Linear(in_features, in_features)
        self.gate = nn.Linear(in_features, in_features)
        self.act = make_activation(activation)
        tag_act(self.transform, parse_activation(activation, path="activation"))
        tag_act(self.gate, ("sigmoid", {}))
        meta_of(self.gate).bias = gate_bias
        self.gate_bias = gate_bias
        self.reset_parameters()

    def reset_parameters(self) -> None:
        with torch.no_grad():
            self.gate.bias.fill_(self.gate_bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = torch.sigmoid(self.gate(x))
        return self.act(self.transform(x)) * t + x * (1.0 - t)


"""Built-in blocks: the recurring pieces of classic CNNs, each one YAML line.

Every block takes its input size (``in_channels``) from the shape flowing in, its activation
from the model's default unless given, and tags its weight layers with the activation that
follows them so ``init: auto`` can pick He or Glorot initialisation (deeppipe.models.initialisers).
Every block is registered in ``LAYERS`` with ``spatial_op``: its output is a feature map.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from deeppipe.models.activations import make_activation, parse_activation
from deeppipe.models.meta import tag_act
from deeppipe.registry import LAYERS

_CONV = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}
_BN = {1: nn.BatchNorm1d, 2: nn.BatchNorm2d, 3: nn.BatchNorm3d}


def _dims_from(in_shape: tuple[int, ...]) -> int:
    return max(1, min(3, len(in_shape) - 1))


def _norm(kind: str | None, channels: int, dims: int, eps: float = 1e-5) -> nn.Module:
    kind = (kind or "none").lower()
    if kind in ("batch", "bn", "batchnorm"):
        return _BN[dims](channels, eps=eps)
    if kind in ("group", "gn", "groupnorm"):
        return nn.GroupNorm(
            min(32, channels) if channels % min(32, channels) == 0 else 1, channels, eps=eps
        )
    if kind in ("layer", "ln", "layernorm"):
        return nn.GroupNorm(1, channels, eps=eps)
    if kind in ("instance", "in", "instancenorm"):
        return nn.GroupNorm(channels, channels, eps=eps)
    if kind in ("none", "identity", "false"):
        return nn.Identity()
    raise ValueError(f"norm must be batch, group, layer, instance or none, got {kind!r}")


def _tag(conv: nn.Module, activation: Any) -> None:
    tag_act(conv, parse_activation(activation, path="activation"))


def _same(kernel_size: int | Sequence[int], dilation: int = 1) -> int | tuple[int, ...]:
    if isinstance(kernel_size, int):
        return (kernel_size - 1) // 2 * dilation
    return tuple((k - 1) // 2 * dilation for k in kernel_size)


class _Block(nn.Module):
    """Base: blocks infer the conv dimensionality (1-D, 2-D, 3-D) from the rank of their input."""

    @staticmethod
    def infer_args(in_shape: tuple[int, ...], is_map: bool) -> dict[str, Any]:
        return {"dims": _dims_from(in_shape)}


@LAYERS.register("ConvBNAct", aliases=("conv_bn_act", "ConvBnAct", "ConvNormAct"),
                 width_args=("out_channels",), spatial_op=True)
class ConvBNAct(_Block):
    """Convolution -> normalisation -> activation (``preact: true``: norm -> activation -> conv).

    ``padding`` defaults to "same" for odd kernels ((k-1)/2 * dilation, also with a stride); the
    convolution has no bias when a norm layer follows (its shift makes the bias redundant).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | Sequence[int] = 3,
        stride: int | Sequence[int] = 1,
        padding: int | Sequence[int] | str | None = None,
        dilation: int = 1,
        groups: int = 1,
        bias: bool | None = None,
        norm: str | None = "batch",
        activation: Any = "relu",
        preact: bool = False,
        eps: float = 1e-5,
        dims: int = 2,
    ) -> None:
        super().__init__()
        has_norm = (norm or "none").lower() not in ("none", "identity", "false")
        bias = (not has_norm) if bias is None else bias
        padding = _same(kernel_size, dilation) if padding is None else padding
        self.conv = _CONV[dims](
            in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias
        )
        if preact:
            self.norm = _norm(norm, in_channels, dims, eps)
            self.act = make_activation(activation)
            _tag(self.conv, "identity")
        else:
            self.norm = _norm(norm, out_channels, dims, eps)
            self.act = make_activation(activation)
            _tag(self.conv, activation)
        self.preact = preact

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.preact:
            return self.conv(self.act(self.norm(x)))
        return self.act(self.norm(self.conv(x)))


@LAYERS.register("SeparableConv2d", aliases=("SeparableConv", "separable_conv", "SeparableConv1d"),
                 width_args=("out_channels",), spatial_op=True)
class SeparableConv(_Block):
    """Depthwise-separable convolution (Xception, Keras ``SeparableConv2D``): a k x k depthwise
    convolution per channel (``depth_multiplier`` filters each), then a 1x1 pointwise convolution.
    Parameters: C*m*k*k + C*m*out (+ biases) instead of C*out*k*k."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        padding: int | str | None = None,
        dilation: int = 1,
        depth_multiplier: int = 1,
        bias: bool = False,
        dims: int = 2,
    ) -> None:
        super().__init__()
        padding = _same(kernel_size, dilation) if padding is None else padding
        mid = in_channels * depth_multiplier
        conv = _CONV[dims]
        self.depthwise = conv(
            in_channels, mid, kernel_size, stride, padding, dilation, groups=in_channels, bias=False
        )
        self.pointwise = conv(mid, out_channels, 1, bias=bias)
        _tag(self.depthwise, "identity")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.depthwise(x))


@LAYERS.register("DepthwiseSeparableConv", aliases=("depthwise_separable", "MobileNetBlock"),
                 width_args=("out_channels",), spatial_op=True)
class DepthwiseSeparableConv(_Block):
    """MobileNet's block: depthwise k x k conv -> BN -> act -> pointwise 1x1 conv -> BN -> act."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        activation: Any = "relu",
        norm: str = "batch",
        dims: int = 2,
    ) -> None:
        super().__init__()
        self.depthwise = ConvBNAct(
            in_channels,
            in_channels,
            kernel_size,
            stride,
            groups=in_channels,
            norm=norm,
            activation=activation,
            dims=dims,
        )
        self.pointwise = ConvBNAct(
            in_channels, out_channels, 1, norm=norm, activation=activation, dims=dims
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.depthwise(x))


# ----------------------------------------------------------------------------- residual
class PadShortcut(nn.Module):
    """He et al.'s option A shortcut: subsample by the stride and zero-pad the new channels
    (no parameters; the CIFAR ResNets use it)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.stride, self.extra = stride, out_channels - in_channels
        if self.extra < 0:
            raise ValueError("a padding shortcut cannot reduce channels; use shortcut: projection")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride > 1:
            x = x[:, :, :: self.stride, :: self.stride]
        if self.extra:
            lo = self.extra // 2
            x = F.pad(x, (0, 0, 0, 0, lo, self.extra - lo))
        return x


def _shortcut(
    kind: str, in_ch: int, out_ch: int, stride: int, norm: str, activation: Any, dims: int
) -> nn.Module:
    kind = kind.lower()
    same = in_ch == out_ch and stride == 1
    if kind == "auto":
        kind = "identity" if same else "projection"
    if kind == "identity":
        if not same:
            raise ValueError(
                f"an identity shortcut needs the same shape in and out, but channels go {in_ch} -> {out_ch} "
                f"with stride {stride}; use shortcut: projection (1x1 conv) or pad"
            )
        return nn.Identity()
    if kind == "projection":
        conv = _CONV[dims](in_ch, out_ch, 1, stride, bias=(norm or "none") == "none")
        _tag(conv, activation)
        return nn.Sequential(conv, _norm(norm, out_ch, dims))
    if kind in ("pad", "zero_pad", "a"):
        if dims != 2:
            raise ValueError("shortcut: pad works on 2-D maps")
        return PadShortcut(in_ch, out_ch, stride)
    raise ValueError(f"shortcut must be auto, identity, projection or pad, got {kind!r}")


@LAYERS.register("BasicBlock", aliases=("residual_basic", "ResidualBasic", "ResBlock"),
                 width_args=("out_channels",), spatial_op=True)
class BasicBlock(_Block):
    """ResNet basic block: 3x3 conv (stride) -> BN -> act -> 3x3 conv -> BN, plus the shortcut,
    then the activation (added before the last activation, He et al. 2015).

    ``shortcut``: auto (identity when the shape is kept, else a 1x1 projection), identity,
    projection, or pad (option A: subsample + zero channels, parameter-free)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int = 1,
        shortcut: str = "auto",
        activation: Any = "relu",
        norm: str = "batch",
        dims: int = 2,
    ) -> None:
        super().__init__()
        conv = _CONV[dims]
        bias = (norm or "none") == "none"
        self.conv1 = conv(in_channels, out_channels, 3, stride, 1, bias=bias)
        self.bn1 = _norm(norm, out_channels, dims)
        self.act1 = make_activation(activation)
        self.conv2 = conv(out_channels, out_channels, 3, 1, 1, bias=bias)
        self.bn2 = _norm(norm, out_channels, dims)
        self.shortcut = _shortcut(
            shortcut, in_channels, out_channels, stride, norm, activation, dims
        )
        self.act2 = make_activation(activation)
        _tag(self.conv1, activation)
        _tag(self.conv2, activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.act1(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return self.act2(y + self.shortcut(x))


@LAYERS.register("Bottleneck", aliases=("residual_bottleneck", "ResidualBottleneck"),
                 width_args=("out_channels", "mid_channels"), spatial_op=True)
class Bottleneck(_Block):
    """ResNet bottleneck: 1x1 (reduce) -> 3x3 -> 1x1 (expand), BN after each, shortcut added
    before the last activation. ``out_channels`` is the block's output (256 in ResNet-50's first
    stage); ``mid_channels`` defaults to out_channels / expansion (4). ``stride_on: 3x3`` is
    ResNet v1.5 (torchvision), ``1x1`` the original v1."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int = 1,
        mid_channels: int | None = None,
        expansion: int = 4,
        groups: int = 1,
        shortcut: str = "auto",
        stride_on: str = "3x3",
        activation: Any = "relu",
        norm: str = "batch",
        dims: int = 2,
    ) -> None:
        super().__init__()
        if stride_on not in ("3x3", "1x1"):
            raise ValueError(f"stride_on must be '3x3' (v1.5) or '1x1' (v1), got {stride_on!r}")
        mid = mid_channels or max(1, out_channels // expansion)
        conv = _CONV[dims]
        bias = (norm or "none") == "none"
        s1, s3 = (1, stride) if stride_on == "3x3" else (stride, 1)
        self.conv1 = conv(in_channels, mid, 1, s1, bias=bias)
        self.bn1 = _norm(norm, mid, dims)
        self.act1 = make_activation(activation)
        self.conv2 = conv(mid, mid, 3, s3, 1, groups=groups, bias=bias)
        self.bn2 = _norm(norm, mid, dims)
        self.act2 = make_activation(activation)
        self.conv3 = conv(mid, out_channels, 1, bias=bias)
        self.bn3 = _norm(norm, out_channels, dims)
        self.shortcut = _shortcut(
            shortcut, in_channels, out_channels, stride, norm, activation, dims
        )
        self.act3 = make_activation(activation)
        for c in (self.conv1, self.conv2, self.conv3):
            _tag(c, activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.act1(self.bn1(self.conv1(x)))
        y = self.act2(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        return self.act3(y + self.shortcut(x))


# ----------------------------------------------------------------------------- densenet
class _DenseLayer(nn.Module):
    def __init__(
        self, in_channels: int, growth_rate: int, bn_size: int, drop_rate: float, activation: Any
    ) -> None:
        super().__init__()
        mid = bn_size * growth_rate
        self.norm1 = nn.BatchNorm2d(in_channels)
        self.act1 = make_activation(activation)
        self.conv1 = nn.Conv2d(in_channels, mid, 1, bias=False)
        self.norm2 = nn.BatchNorm2d(mid)
        self.act2 = make_activation(activation)
        self.conv2 = nn.Conv2d(mid, growth_rate, 3, padding=1, bias=False)
        self.drop = nn.Dropout(drop_rate) if drop_rate > 0 else nn.Identity()
        _tag(self.conv1, activation)
        _tag(self.conv2, activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv1(self.act1(self.norm1(x)))
        return self.drop(self.conv2(self.act2(self.norm2(y))))


@LAYERS.register("DenseBlock", aliases=("dense_block",),
                 width_args=("growth_rate",), spatial_op=True)
class DenseBlock(_Block):
    """DenseNet block (Huang et al. 2017): ``num_layers`` BN-act-1x1 conv (bn_size*k) -> BN-act-3x3
    conv (k) layers; each receives the concatenation of the block input and every earlier layer's
    output, and the block returns all of them: C + num_layers * growth_rate channels."""

    def __init__(
        self,
        in_channels: int,
        num_layers: int,
        growth_rate: int = 32,
        bn_size: int = 4,
        drop_rate: float = 0.0,
        activation: Any = "relu",
        dims: int = 2,
    ) -> None:
        super().__init__()
        if dims != 2:
            raise ValueError("DenseBlock works on (C, H, W) maps")
        if num_layers < 1:
            raise ValueError("num_layers must be >= 1")
        self.layers = nn.ModuleList(
            _DenseLayer(in_channels + i * growth_rate, growth_rate, bn_size, drop_rate, activation)
            for i in range(num_layers)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = [x]
        for layer in self.layers:
            features.append(layer(torch.cat(features, dim=1)))
        return torch.cat(features, dim=1)


@LAYERS.register("Transition", aliases=("dense_transition", "TransitionLayer"),
                 width_args=("out_channels",), spatial_op=True)
class Transition(_Block):
    """DenseNet transition: BN -> act -> 1x1 conv to floor(C * compression) channels (or
    ``out_channels``) -> 2x2 average pooling, stride 2."""

    def __init__(
        self,
        in_channels: int,
        compression: float = 0.5,
        out_channels: int | None = None,
        activation: Any = "relu",
        dims: int = 2,
    ) -> None:
        super().__init__()
        if not 0.0 < compression <= 1.0:
            raise ValueError(f"compression must be in (0, 1], got {compression}")
        out = out_channels or int(in_channels * compression)
        self.norm = nn.BatchNorm2d(in_channels)
        self.act = make_activation(activation)
        self.conv = nn.Conv2d(in_channels, out, 1, bias=False)
        self.pool = nn.AvgPool2d(2, 2)
        _tag(self.conv, "identity")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.conv(self.act(self.norm(x))))


# ----------------------------------------------------------------------------- inception
@LAYERS.register("Inception", aliases=("inception_module", "InceptionModule"),
                 width_args=("b1", "b3_reduce", "b3", "b5_reduce", "b5", "pool_proj"), spatial_op=True)
class Inception(_Block):
    """Inception v1 module (Szegedy et al. 2014): four parallel branches concatenated on channels:
    1x1 (b1); 1x1 (b3_reduce) -> 3x3 (b3); 1x1 (b5_reduce) -> 5x5 (b5); 3x3 max-pool -> 1x1
    (pool_proj). Each conv is conv-BN-act (``norm: none`` for the 2014 original's conv+bias).
    ``b5_kernel: 3`` reproduces torchvision's GoogLeNet, whose "5x5" branch uses 3x3 kernels."""

    def __init__(
        self,
        in_channels: int,
        b1: int,
        b3_reduce: int,
        b3: int,
        b5_reduce: int,
        b5: int,
        pool_proj: int,
        b5_kernel: int = 5,
        norm: str = "batch",
        eps: float = 1e-3,
        activation: Any = "relu",
        dims: int = 2,
    ) -> None:
        super().__init__()
        if dims != 2:
            raise ValueError("Inception works on (C, H, W) maps")

        def cba(i: int, o: int, k: int) -> ConvBNAct:
            return ConvBNAct(i, o, k, norm=norm, activation=activation, eps=eps)

        self.branch1 = cba(in_channels, b1, 1)
        self.branch3 = nn.Sequential(cba(in_channels, b3_reduce, 1), cba(b3_reduce, b3, 3))
        self.branch5 = nn.Sequential(cba(in_channels, b5_reduce, 1), cba(b5_reduce, b5, b5_kernel))
        self.branch_pool = nn.Sequential(
            nn.MaxPool2d(3, 1, 1, ceil_mode=True), cba(in_channels, pool_proj, 1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat(
            [self.branch1(x), self.branch3(x), self.branch5(x), self.branch_pool(x)], dim=1
        )

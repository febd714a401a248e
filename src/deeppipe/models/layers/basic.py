"""Small tensor-plumbing layers torch.nn does not have: merging, global and sum pooling,
per-sample reshaping, noise. Registered in ``LAYERS`` under the names a spec uses.

Shapes in docstrings are per sample (no batch axis), the way a spec thinks about them.
A class may define ``infer_args(in_shape, is_map) -> dict``: defaults the builder fills in from
the incoming shape when the spec does not give them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from deeppipe.registry import LAYERS


# ----------------------------------------------------------------------------- merging
@LAYERS.register("Add", aliases=("sum", "residual_add"), multi_input=True)
class Add(nn.Module):
    """Element-wise sum of every input named in ``from:`` (a residual connection). Shapes must match."""

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        out = xs[0]
        for x in xs[1:]:
            out = out + x
        return out


@LAYERS.register("Multiply", aliases=("mul",), multi_input=True)
class Multiply(nn.Module):
    """Element-wise product of the inputs (gates, attention masks). Shapes must match."""

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        out = xs[0]
        for x in xs[1:]:
            out = out * x
        return out


@LAYERS.register("Concat", aliases=("concatenate", "cat"), multi_input=True)
class Concat(nn.Module):
    """Concatenate the inputs along a per-sample axis (``dim: 0`` = channels, the default; ``-1``
    = the last axis, e.g. features of a sequence). Every other axis must match."""

    def __init__(self, dim: int = 0) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        return torch.cat(xs, dim=self.dim + 1 if self.dim >= 0 else self.dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


# ----------------------------------------------------------------------------- pooling / reshaping
class _GlobalPool(nn.Module):
    def __init__(self, time_major: bool = False) -> None:
        super().__init__()
        self.time_major = time_major

    @staticmethod
    def infer_args(in_shape: tuple[int, ...], is_map: bool) -> dict[str, Any]:
        # (T, F) sequences pool over time; (C, ...) maps over every spatial axis
        return {"time_major": len(in_shape) == 2 and not is_map}

    def _dims(self, x: torch.Tensor) -> tuple[int, ...]:
        return (1,) if self.time_major else tuple(range(2, x.dim()))

    def extra_repr(self) -> str:
        return "over time" if self.time_major else "over spatial axes"


@LAYERS.register("GlobalAvgPool", aliases=("global_avg_pool", "GlobalAveragePooling", "gap"))
class GlobalAvgPool(_GlobalPool):
    """Mean over every spatial axis: (C, H, W) -> (C,); over time for a (T, F) sequence -> (F,)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=self._dims(x))


@LAYERS.register("GlobalMaxPool", aliases=("global_max_pool", "GlobalMaxPooling"))
class GlobalMaxPool(_GlobalPool):
    """Maximum over every spatial axis (or over time for a (T, F) sequence)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.amax(dim=self._dims(x))


class _SumPool(nn.Module):
    def __init__(
        self,
        kernel_size: int | Sequence[int],
        stride: int | Sequence[int] | None = None,
        padding: int = 0,
    ) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding = padding

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


@LAYERS.register("SumPool2d", aliases=("sum_pool2d", "SumPool"), spatial_op=True)
class SumPool2d(_SumPool):
    """Sum pooling: average pooling times the window area (padding counts as zeros)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(x, self.kernel_size, self.stride, self.padding, divisor_override=1)


@LAYERS.register("SumPool1d", aliases=("sum_pool1d",), spatial_op=True)
class SumPool1d(_SumPool):
    """Sum pooling over a (C, L) signal."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k = self.kernel_size if isinstance(self.kernel_size, int) else self.kernel_size[0]
        return (
            F.avg_pool1d(x, self.kernel_size, self.stride, self.padding, count_include_pad=True) * k
        )


@LAYERS.register("Reshape", aliases=("view",))
class Reshape(nn.Module):
    """Reshape each sample: ``{shape: [16, 7, 7]}``, ``-1`` allowed; ``{shape: input}`` = the
    model's input shape (autoencoder outputs)."""

    def __init__(self, shape: Sequence[int]) -> None:
        super().__init__()
        self.shape = tuple(int(s) for s in shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], *self.shape)

    def extra_repr(self) -> str:
        return f"shape={self.shape}"


@LAYERS.register("Permute")
class Permute(nn.Module):
    """Reorder the per-sample axes: ``{dims: [1, 0]}`` turns (T, F) into (F, T)."""

    def __init__(self, dims: Sequence[int]) -> None:
        super().__init__()
        self.dims = tuple(int(d) for d in dims)
        if sorted(self.dims) != list(range(len(self.dims))):
            raise ValueError(
                f"dims must be a permutation of 0..{len(self.dims) - 1}, got {list(self.dims)}"
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.permute(0, *(d + 1 for d in self.dims))

    def extra_repr(self) -> str:
        return f"dims={self.dims}"


@LAYERS.register("Transpose")
class Transpose(nn.Module):
    """Swap two per-sample axes (default 0 and 1: (T, F) <-> (F, T))."""

    def __init__(self, dim0: int = 0, dim1: int = 1) -> None:
        super().__init__()
        self.dim0, self.dim1 = dim0, dim1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        d0 = self.dim0 + 1 if self.dim0 >= 0 else self.dim0
        d1 = self.dim1 + 1 if self.dim1 >= 0 else self.dim1
        return x.transpose(d0, d1)

    def extra_repr(self) -> str:
        return f"dim0={self.dim0}, dim1={self.dim1}"


@LAYERS.register("GaussianNoise", aliases=("gaussian_noise",))
class GaussianNoise(nn.Module):
    """Adds N(0, std^2) noise while training (denoising autoencoders, noise injection as a
    regulariser); the identity in eval mode."""

    def __init__(self, std: float = 0.1) -> None:
        super().__init__()
        if std < 0:
            raise ValueError(f"std must be >= 0, got {std}")
        self.std = std

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.std == 0:
            return x
        return x + torch.randn_like(x) * self.std

    def extra_repr(self) -> str:
        return f"std={self.std}"


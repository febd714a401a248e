"""Fixed edge filters: depthwise convolutions with hand-designed kernels that are never trained
(Prewitt, Sobel, Scharr, Laplacian, Kirsch and Robinson compass masks)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from deeppipe.registry import LAYERS


def _ring_rotations(base: list[list[float]]) -> list[list[list[float]]]:
    """The 8 compass versions of a 3x3 mask: rotate its outer ring by 45 degrees at a time."""
    ring = [(0, 0), (0, 1), (0, 2), (1, 2), (2, 2), (2, 1), (2, 0), (1, 0)]
    values = [base[r][c] for r, c in ring]
    out = []
    for k in range(8):
        m = [[0.0] * 3 for _ in range(3)]
        m[1][1] = base[1][1]
        for i, (r, c) in enumerate(ring):
            m[r][c] = values[(i - k) % 8]
        out.append(m)
    return out


EDGE_KERNELS: dict[str, list[list[list[float]]]] = {
    "prewitt": [[[-1, 0, 1], [-1, 0, 1], [-1, 0, 1]], [[-1, -1, -1], [0, 0, 0], [1, 1, 1]]],
    "sobel": [[[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], [[-1, -2, -1], [0, 0, 0], [1, 2, 1]]],
    "scharr": [[[-3, 0, 3], [-10, 0, 10], [-3, 0, 3]], [[-3, -10, -3], [0, 0, 0], [3, 10, 3]]],
    "laplacian4": [[[0, 1, 0], [1, -4, 1], [0, 1, 0]]],
    "laplacian8": [[[1, 1, 1], [1, -8, 1], [1, 1, 1]]],
    "kirsch": _ring_rotations([[5, 5, 5], [-3, 0, -3], [-3, -3, -3]]),
    "robinson": _ring_rotations([[1, 2, 1], [0, 0, 0], [-1, -2, -1]]),
}


@LAYERS.register("FixedConv2d", spatial_op=True)
class FixedConv2d(nn.Module):
    """A depthwise convolution with hand-designed kernels that are never trained.

    Every input channel is filtered by each kernel, so C channels become C * K (channel-major).
    ``combine: magnitude`` returns sqrt(sum of squared responses) per channel and ``max`` the
    strongest compass response, both C channels. The kernels are a buffer, not a parameter: the
    optimiser never sees them, and they are saved with the weights.
    """

    def __init__(
        self,
        in_channels: int,
        kernels: Sequence[Sequence[Sequence[float]]],
        padding: int = 1,
        combine: str = "stack",
    ) -> None:
        super().__init__()
        if combine not in ("stack", "magnitude", "max"):
            raise ValueError(f"combine must be stack, magnitude or max, got {combine!r}")
        self.in_channels, self.padding, self.combine = in_channels, padding, combine
        self._kernels = [[[float(v) for v in row] for row in k] for k in kernels]
        self.num_kernels = len(self._kernels)
        kh, kw = len(self._kernels[0]), len(self._kernels[0][0])
        self.register_buffer("weight", torch.empty(in_channels * self.num_kernels, 1, kh, kw))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        k = torch.tensor(self._kernels, dtype=self.weight.dtype, device=self.weight.device)
        with torch.no_grad():
            self.weight.copy_(k.unsqueeze(1).repeat(self.in_channels, 1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.conv2d(x, self.weight, padding=self.padding, groups=self.in_channels)
        if self.combine == "stack":
            return y
        y = y.reshape(y.shape[0], self.in_channels, self.num_kernels, *y.shape[2:])
        if self.combine == "magnitude":
            return y.pow(2).sum(dim=2).add(1e-12).sqrt()
        return y.amax(dim=2)

    def extra_repr(self) -> str:
        return f"in_channels={self.in_channels}, kernels={self.num_kernels}, combine={self.combine}"


def _edge_filter(name: str, kind: str, doc: str, aliases: tuple[str, ...] = ()) -> type[FixedConv2d]:
    """Register a FixedConv2d subclass whose kernels are the named set: the spec gives only
    in_channels (and padding, combine)."""

    def __init__(self, in_channels: int, padding: int = 1, combine: str = "stack") -> None:
        FixedConv2d.__init__(self, in_channels, EDGE_KERNELS[kind], padding=padding, combine=combine)

    cls = type(name, (FixedConv2d,), {"__init__": __init__, "__doc__": doc, "__module__": __name__})
    return LAYERS.register(name, aliases=aliases, spatial_op=True)(cls)


Prewitt = _edge_filter("Prewitt", "prewitt", "Prewitt x and y gradients (2 kernels, fixed).")
Sobel = _edge_filter("Sobel", "sobel", "Sobel x and y gradients (2 kernels, fixed).")
Scharr = _edge_filter("Scharr", "scharr", "Scharr x and y gradients (2 kernels, fixed).")
Laplacian4 = _edge_filter("Laplacian4", "laplacian4", "4-neighbour Laplacian (1 kernel, fixed).", ("laplacian",))
Laplacian8 = _edge_filter("Laplacian8", "laplacian8", "8-neighbour Laplacian (1 kernel, fixed).")
Kirsch = _edge_filter("Kirsch", "kirsch", "Kirsch compass masks (8 directions, fixed).")
Robinson = _edge_filter("Robinson", "robinson", "Robinson compass masks (8 directions, fixed).")


@LAYERS.register("EdgeDetect", aliases=("edge_detect", "edges"), spatial_op=True)
def EdgeDetect(in_channels: int, kind: str = "sobel", padding: int = 1, combine: str = "stack"
               ) -> FixedConv2d:
    """Fixed edge detector by name: prewitt, sobel, scharr, laplacian4, laplacian8, kirsch, robinson."""
    key = str(kind).lower()
    if key == "laplacian":
        key = "laplacian4"
    if key not in EDGE_KERNELS:
        raise ValueError(f"unknown edge detector {kind!r}; one of {', '.join(EDGE_KERNELS)}")
    return FixedConv2d(in_channels, EDGE_KERNELS[key], padding=padding, combine=combine)

"""Small layers that torch.nn does not have, registered in ``LAYERS`` under the names a spec uses.

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

from deeppipe.models.registry import register_layer


# ----------------------------------------------------------------------------- merging
@register_layer("Add", aliases=("sum", "residual_add"))
class Add(nn.Module):
    """Element-wise sum of every input named in ``from:`` (a residual connection). Shapes must match."""

    multi_input = True

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        out = xs[0]
        for x in xs[1:]:
            out = out + x
        return out


@register_layer("Multiply", aliases=("mul",))
class Multiply(nn.Module):
    """Element-wise product of the inputs (gates, attention masks). Shapes must match."""

    multi_input = True

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        out = xs[0]
        for x in xs[1:]:
            out = out * x
        return out


@register_layer("Concat", aliases=("concatenate", "cat"))
class Concat(nn.Module):
    """Concatenate the inputs along a per-sample axis (``dim: 0`` = channels, the default; ``-1``
    = the last axis, e.g. features of a sequence). Every other axis must match."""

    multi_input = True

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


@register_layer("GlobalAvgPool", aliases=("global_avg_pool", "GlobalAveragePooling", "gap"))
class GlobalAvgPool(_GlobalPool):
    """Mean over every spatial axis: (C, H, W) -> (C,); over time for a (T, F) sequence -> (F,)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=self._dims(x))


@register_layer("GlobalMaxPool", aliases=("global_max_pool", "GlobalMaxPooling"))
class GlobalMaxPool(_GlobalPool):
    """Maximum over every spatial axis (or over time for a (T, F) sequence)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.amax(dim=self._dims(x))


class _SumPool(nn.Module):
    spatial_op = True
    _dims = 2

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


@register_layer("SumPool2d", aliases=("sum_pool2d", "SumPool"))
class SumPool2d(_SumPool):
    """Sum pooling: average pooling times the window area (padding counts as zeros)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(x, self.kernel_size, self.stride, self.padding, divisor_override=1)


@register_layer("SumPool1d", aliases=("sum_pool1d",))
class SumPool1d(_SumPool):
    """Sum pooling over a (C, L) signal."""

    _dims = 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k = self.kernel_size if isinstance(self.kernel_size, int) else self.kernel_size[0]
        return (
            F.avg_pool1d(x, self.kernel_size, self.stride, self.padding, count_include_pad=True) * k
        )


@register_layer("Reshape", aliases=("view",))
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


@register_layer("Permute")
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


@register_layer("Transpose")
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


@register_layer("GaussianNoise", aliases=("gaussian_noise",))
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


# ----------------------------------------------------------------------------- dense variants
@register_layer(
    "DropConnect", aliases=("drop_connect", "DropConnectLinear"), width_args=("out_features",)
)
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


@register_layer("Maxout", width_args=("out_features",))
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
        self.linear._dp_act = "maxout"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.linear(x)
        return y.reshape(*y.shape[:-1], self.out_features, self.pieces).amax(dim=-1)

    def extra_repr(self) -> str:
        return f"pieces={self.pieces}"


@register_layer("Highway", aliases=("highway_gate",))
class Highway(nn.Module):
    """Highway layer (Srivastava et al. 2015): y = H(x) * T(x) + x * (1 - T(x)), with the transform
    gate T(x) = sigmoid(W_T x + b_T). The gate bias starts negative (``gate_bias``) so the layer
    begins close to the identity and deep stacks still train. Size is unchanged."""

    def __init__(self, in_features: int, activation: Any = "relu", gate_bias: float = -2.0) -> None:
        super().__init__()
        from deeppipe.models.activations import make_activation, parse_activation

        self.transform = nn.Linear(in_features, in_features)
        self.gate = nn.Linear(in_features, in_features)
        self.act = make_activation(activation)
        name, kwargs = parse_activation(activation, path="activation")
        self.transform._dp_act, self.transform._dp_act_kwargs = name, kwargs
        self.gate._dp_act, self.gate._dp_bias = "sigmoid", gate_bias
        self.gate_bias = gate_bias
        self.reset_parameters()

    def reset_parameters(self) -> None:
        with torch.no_grad():
            self.gate.bias.fill_(self.gate_bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = torch.sigmoid(self.gate(x))
        return self.act(self.transform(x)) * t + x * (1.0 - t)


# ----------------------------------------------------------------------------- fixed filters
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


class FixedConv2d(nn.Module):
    """A depthwise convolution with hand-designed kernels that are never trained.

    Every input channel is filtered by each kernel, so C channels become C * K (channel-major).
    ``combine: magnitude`` returns sqrt(sum of squared responses) per channel and ``max`` the
    strongest compass response, both C channels. The kernels are a buffer, not a parameter: the
    optimiser never sees them, and they are saved with the weights.
    """

    spatial_op = True

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


register_layer("FixedConv2d")(FixedConv2d)


def _edge_class(kind: str, doc: str) -> type[FixedConv2d]:
    def __init__(self, in_channels: int, padding: int = 1, combine: str = "stack") -> None:
        FixedConv2d.__init__(
            self, in_channels, EDGE_KERNELS[kind], padding=padding, combine=combine
        )

    name = {"laplacian4": "Laplacian4", "laplacian8": "Laplacian8"}.get(kind, kind.capitalize())
    cls = type(name, (FixedConv2d,), {"__init__": __init__, "__doc__": doc, "kind": kind})
    cls.__module__ = __name__
    return cls


Prewitt = register_layer("Prewitt")(
    _edge_class("prewitt", "Prewitt x and y gradients (2 kernels, fixed).")
)
Sobel = register_layer("Sobel")(_edge_class("sobel", "Sobel x and y gradients (2 kernels, fixed)."))
Scharr = register_layer("Scharr")(
    _edge_class("scharr", "Scharr x and y gradients (2 kernels, fixed).")
)
Laplacian4 = register_layer("Laplacian4", aliases=("laplacian",))(
    _edge_class("laplacian4", "4-neighbour Laplacian (1 kernel, fixed).")
)
Laplacian8 = register_layer("Laplacian8")(
    _edge_class("laplacian8", "8-neighbour Laplacian (1 kernel, fixed).")
)
Kirsch = register_layer("Kirsch")(
    _edge_class("kirsch", "Kirsch compass masks (8 directions, fixed).")
)
Robinson = register_layer("Robinson")(
    _edge_class("robinson", "Robinson compass masks (8 directions, fixed).")
)


@register_layer("EdgeDetect", aliases=("edge_detect", "edges"))
def EdgeDetect(
    in_channels: int, kind: str = "sobel", padding: int = 1, combine: str = "stack"
) -> FixedConv2d:
    """Fixed edge detector by name: prewitt, sobel, scharr, laplacian4, laplacian8, kirsch, robinson."""
    key = str(kind).lower()
    if key == "laplacian":
        key = "laplacian4"
    if key not in EDGE_KERNELS:
        raise ValueError(f"unknown edge detector {kind!r}; one of {', '.join(EDGE_KERNELS)}")
    return FixedConv2d(in_channels, EDGE_KERNELS[key], padding=padding, combine=combine)


EdgeDetect.spatial_op = True


# ----------------------------------------------------------------------------- embeddings, recurrence
@register_layer("Embedding", aliases=("embed",), width_args=())
class Embedding(nn.Embedding):
    """``nn.Embedding`` that accepts token ids stored as floats (the data contract hands models
    float32 arrays) and can start from pretrained vectors in word2vec/GloVe text format.

    ``vectors: path/to/glove.txt`` with ``vocab: path/to/vocab.txt`` (one token per line, line i =
    id i) copies the vector of each known token; ``freeze: true`` keeps them fixed.
    """

    def __init__(
        self,
        num_embeddings: int,
        embedding_dim: int,
        padding_idx: int | None = None,
        max_norm: float | None = None,
        vectors: str | None = None,
        vocab: str | None = None,
        freeze: bool = False,
    ) -> None:
        super().__init__(num_embeddings, embedding_dim, padding_idx=padding_idx, max_norm=max_norm)
        self.vectors_file, self.vocab_file = vectors, vocab
        if vectors is not None and vocab is None:
            raise ValueError(
                "vectors: needs vocab: (a file with one token per line, line i = token id i)"
            )
        if freeze:
            self.weight.requires_grad_(False)
        if vectors is not None:
            self._pretrained = load_text_vectors(vectors, vocab, num_embeddings, embedding_dim)
            self.reset_parameters()

    def reset_parameters(self) -> None:
        super().reset_parameters()
        pre = getattr(self, "_pretrained", None)
        if pre is not None and self.weight.device.type != "meta":
            rows, vecs = pre
            with torch.no_grad():
                self.weight[rows] = vecs.to(self.weight.device, self.weight.dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.long() if x.is_floating_point() else x)


def load_text_vectors(
    vectors: str, vocab: str, num_embeddings: int, dim: int
) -> tuple[list[int], torch.Tensor]:
    """Rows and vectors for the vocabulary tokens found in a word2vec/GloVe text file."""
    with open(vocab, encoding="utf-8") as f:
        ids = {line.rstrip("\n"): i for i, line in enumerate(f) if i < num_embeddings}
    rows: list[int] = []
    vecs: list[list[float]] = []
    with open(vectors, encoding="utf-8") as f:
        for n, line in enumerate(f):
            parts = line.rstrip().split(" ")
            if n == 0 and len(parts) == 2:
                continue  # word2vec header: "count dim"
            if parts[0] in ids and len(parts) == dim + 1:
                rows.append(ids[parts[0]])
                vecs.append([float(v) for v in parts[1:]])
    if not rows:
        raise ValueError(f"no token of {vocab} has a {dim}-dimensional vector in {vectors}")
    return rows, torch.tensor(vecs, device="cpu")  # not the meta device the builder may be using


class _RecurrentMixin:
    """Batch-first recurrent layer returning one tensor: the last step (many-to-one), every step
    (many-to-many), or their mean / max over time. For a bidirectional layer "last" joins the
    forward direction's final state and the backward direction's state at t = 0."""

    OUTPUTS = ("last", "all", "mean", "max")

    def _setup_output(self, output: str) -> None:
        if output not in self.OUTPUTS:
            raise ValueError(f"output must be one of {', '.join(self.OUTPUTS)}, got {output!r}")
        self.output = output

    def _select(self, seq: torch.Tensor, h_n: torch.Tensor) -> torch.Tensor:
        if self.output == "all":
            return seq
        if self.output == "mean":
            return seq.mean(dim=1)
        if self.output == "max":
            return seq.amax(dim=1)
        d = 2 if self.bidirectional else 1
        last = h_n[-d:]  # (d, N, H): the top layer's final state per direction
        return last.transpose(0, 1).reshape(h_n.shape[1], -1)


def _recurrent(base: type[nn.RNNBase], name: str) -> type[nn.Module]:
    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bidirectional: bool = False,
        dropout: float = 0.0,
        bias: bool = True,
        output: str = "last",
        **kwargs: Any,
    ) -> None:
        kwargs.pop("batch_first", None)
        base.__init__(
            self,
            input_size,
            hidden_size,
            num_layers=num_layers,
            bidirectional=bidirectional,
            dropout=dropout,
            bias=bias,
            batch_first=True,
            **kwargs,
        )
        self._setup_output(output)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        seq, state = base.forward(self, x)
        h_n = state[0] if isinstance(state, tuple) else state
        return self._select(seq, h_n)

    def extra_repr(self) -> str:
        return f"{base.extra_repr(self)}, output={self.output}"

    def dp_output_shape(self, in_shape: tuple[int, ...]) -> tuple[int, ...]:
        # closed form: running a recurrence on the meta device unrolls every time step
        if len(in_shape) != 2 or in_shape[1] != self.input_size:
            raise ValueError(f"expects (T, {self.input_size}) per sample, got {tuple(in_shape)}")
        width = (2 if self.bidirectional else 1) * (
            getattr(self, "proj_size", 0) or self.hidden_size
        )
        return (in_shape[0], width) if self.output == "all" else (width,)

    doc = (
        f"{name} over a (T, F) sequence, batch first; input_size is inferred. ``output``: last "
        "(N, D*H), all (N, T, D*H), mean or max over time (N, D*H)."
    )
    return type(
        name,
        (_RecurrentMixin, base),
        {
            "__init__": __init__,
            "forward": forward,
            "extra_repr": extra_repr,
            "dp_output_shape": dp_output_shape,
            "__doc__": doc,
            "__module__": __name__,
        },
    )


RNN = register_layer("RNN", width_args=("hidden_size",))(_recurrent(nn.RNN, "RNN"))
LSTM = register_layer("LSTM", width_args=("hidden_size",))(_recurrent(nn.LSTM, "LSTM"))
GRU = register_layer("GRU", width_args=("hidden_size",))(_recurrent(nn.GRU, "GRU"))

"""Sequence layers: embeddings that take float token ids (and pretrained vectors), and batch-first
recurrent layers that return one tensor (last step, every step, or a pooling over time)."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn

from deeppipe.registry import LAYERS


@LAYERS.register("Embedding", aliases=("embed",), width_args=())
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


RNN = LAYERS.register("RNN", width_args=("hidden_size",))(_recurrent(nn.RNN, "RNN"))
LSTM = LAYERS.register("LSTM", width_args=("hidden_size",))(_recurrent(nn.LSTM, "LSTM"))
GRU = LAYERS.register("GRU", width_args=("hidden_size",))(_recurrent(nn.GRU, "GRU"))

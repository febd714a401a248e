"""Variable-length sequences without letting padding change a result.

deeppipe's samples are one dense array, so a set of sequences of different lengths is padded to
the longest (``data.sources.sequences``, ``data.sources.text``). The padded steps are marked by
a **mask channel**: the last feature of every step is 1 for a real step and 0 for padding (real
steps first). ``TokenEmbedding`` adds that channel to embedded token ids (id 0 is ``<pad>``);
the numeric sequence sources add it themselves. The ``Packed*`` recurrent layers read it, pack
the batch (``torch.nn.utils.rnn.pack_padded_sequence``) so the recurrence stops at each
sequence's own end, and drop it: a sequence gives the same output alone as padded in a batch.
``StepMask`` (added after a CTC network by ``artifact.assemble``) makes the outputs at padded steps
a certain blank, from which the CTC loss reads each sequence's real length.

``StepDecoder`` is the one-to-many piece: one input vector unrolled into ``steps`` outputs.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn as nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from deeppipe.registry import LAYERS


def split_mask(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(features without the mask channel, lengths (N,) int64, at least 1)."""
    mask = x[..., -1] > 0.5
    return x[..., :-1], mask.sum(dim=1).clamp_min(1)


OFF_LOGIT = -1e4  # a padded step's score for every class but the blank (exp(-1e4) is 0 in float32)


def real_lengths(x: torch.Tensor, layout: str | None) -> torch.Tensor:
    """Each sample's real steps (N,), int64: the mask channel (padded sequences) or the ids that
    are not ``<pad>`` (0-padded token ids); every step for inputs without padding."""
    if layout == "padded_sequence":
        return split_mask(x)[1]
    if layout == "padded_tokens":
        return (x != 0).sum(dim=1).clamp_min(1)
    return torch.full((x.shape[0],), x.shape[1], dtype=torch.long, device=x.device)


class StepMask(nn.Module):
    """CTC outputs at padded steps set to a certain blank (score 0 for the blank, ``OFF_LOGIT`` for
    every label), after the network: padding never emits a label in greedy decoding, and the CTC
    loss reads each sequence's real length back from them (``padded_steps``), so a padded sequence
    scores as it does alone. Outputs of another length than the input (a strided convolution) get
    the lengths scaled (rounded up). No weights: models saved before it load unchanged."""

    def __init__(self, layout: str | None, blank: int = 0) -> None:
        super().__init__()
        self.layout, self.blank = layout, int(blank)

    def forward(self, x: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        if out.dim() != 3:
            return out
        lengths = real_lengths(x, self.layout)
        t_in, t_out = x.shape[1], out.shape[1]  # equal lengths: the identity (no branch, so it traces)
        lengths = torch.div(lengths * t_out + t_in - 1, t_in, rounding_mode="floor").clamp(1, t_out)
        valid = torch.arange(t_out, device=out.device)[None, :] < lengths[:, None]
        return torch.where(valid.unsqueeze(-1), out, _blank_row(out, self.blank))

    def extra_repr(self) -> str:
        return f"layout={self.layout}, blank={self.blank}"


def _blank_row(out: torch.Tensor, blank: int) -> torch.Tensor:
    row = torch.full((out.shape[-1],), OFF_LOGIT, dtype=out.dtype, device=out.device)
    row[blank] = 0.0
    return row


def padded_steps(out: torch.Tensor, blank: int = 0) -> torch.Tensor:
    """(N, T) bool: the steps ``StepMask`` set to the certain blank (a trained head never gives
    exactly these scores)."""
    return (out == _blank_row(out, blank)).all(dim=-1)


def _packed(base: type[nn.RNNBase], name: str) -> type[nn.Module]:
    class Packed(nn.Module):
        OUTPUTS = ("last", "all", "mean", "max")

        def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bidirectional: bool = False,
                     dropout: float = 0.0, output: str = "last", keep_mask: bool = False) -> None:
            super().__init__()
            if output not in self.OUTPUTS:
                raise ValueError(f"output must be one of {', '.join(self.OUTPUTS)}, got {output!r}")
            if input_size < 2:
                raise ValueError(f"{name} reads a mask channel as the last feature: it needs at least one feature "
                                 f"besides it, got input_size {input_size} (padded sequences from a sequence or "
                                 "text source, or a TokenEmbedding, feed it)")
            if keep_mask and output != "all":
                raise ValueError("keep_mask passes the mask channel on with every step's output: it needs output: all")
            self.rnn = base(input_size - 1, hidden_size, num_layers=num_layers, bidirectional=bidirectional,
                            dropout=dropout, batch_first=True)
            self.input_size, self.hidden_size, self.output, self.keep_mask = input_size, hidden_size, output, keep_mask
            self.bidirectional = bidirectional

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            feats, lengths = split_mask(x)
            t = x.shape[1]
            packed = pack_padded_sequence(feats, lengths.cpu(), batch_first=True, enforce_sorted=False)
            seq, state = self.rnn(packed)
            h_n = state[0] if isinstance(state, tuple) else state
            if self.output == "last":  # each sequence's own final state (packing stops at its end)
                d = 2 if self.bidirectional else 1
                return h_n[-d:].transpose(0, 1).reshape(x.shape[0], -1)
            out, _ = pad_packed_sequence(seq, batch_first=True, total_length=t)  # zeros at padded steps
            valid = (torch.arange(t, device=x.device)[None, :] < lengths[:, None]).unsqueeze(-1)
            if self.output == "mean":
                return out.sum(dim=1) / lengths[:, None].to(out.dtype)
            if self.output == "max":
                return out.masked_fill(~valid, float("-inf")).amax(dim=1)
            return torch.cat([out, x[..., -1:]], dim=-1) if self.keep_mask else out

        def dp_output_shape(self, in_shape: tuple[int, ...]) -> tuple[int, ...]:
            if len(in_shape) != 2 or in_shape[1] != self.input_size:
                raise ValueError(f"expects (T, {self.input_size}) per sample (features + mask), got {tuple(in_shape)}")
            width = (2 if self.bidirectional else 1) * self.hidden_size
            return (in_shape[0], width + int(self.keep_mask)) if self.output == "all" else (width,)

        def extra_repr(self) -> str:
            return f"output={self.output}, keep_mask={self.keep_mask}"

    Packed.__name__ = Packed.__qualname__ = name
    Packed.__doc__ = (f"{base.__name__} over padded (T, F + mask) sequences, packed so padding never counts; "
                      "input_size (features + the mask channel) is inferred. ``output``: last (each sequence's "
                      "own last step), all (N, T, D*H, zeros at padding), mean or max over the real steps.")
    return Packed


PackedRNN = LAYERS.register("PackedRNN", width_args=("hidden_size",))(_packed(nn.RNN, "PackedRNN"))
PackedLSTM = LAYERS.register("PackedLSTM", width_args=("hidden_size",))(_packed(nn.LSTM, "PackedLSTM"))
PackedGRU = LAYERS.register("PackedGRU", width_args=("hidden_size",))(_packed(nn.GRU, "PackedGRU"))


def vector_width(path: str, dim: int | None = None) -> int:
    """The dimension of a word-vector file, from its first vector (cheap: GloVe files are GBs)."""
    file = Path(path)
    if not file.is_file():
        raise ValueError(f"word-vector file {path} does not exist")
    with file.open(encoding="utf-8") as f:
        for n, line in enumerate(f, start=1):
            parts = line.rstrip("\n").rstrip().split(" ")
            if (n == 1 and len(parts) == 2 and all(p.isdigit() for p in parts)) or len(parts) < 2:
                continue  # the word2vec header ("count dim"), blank lines
            width = len(parts) - 1
            if dim is not None and width != dim:
                raise ValueError(f"the word vectors in {path} have {width} dimensions but embedding_dim is {dim}: "
                                 f"set embedding_dim: {width} (or use vectors of {dim} dimensions)")
            return width
    raise ValueError(f"{path} holds no word vectors")


def check_vectors(model: nn.Module) -> str | None:
    """Validation: why a TokenEmbedding's word-vector file cannot start training (missing, empty, another
    width), or None. Not done when a network is built: a trained model's rebuild (evaluation, serving)
    has the vectors in its weights and must not need the file."""
    for m in model.modules():
        if isinstance(m, TokenEmbedding) and m.vectors_file is not None:
            try:
                vector_width(m.vectors_file, m.embedding_dim)
            except ValueError as exc:
                return str(exc)
    return None


def read_vectors(path: str, dim: int | None = None) -> dict[str, list[float]]:
    """Word vectors from a word2vec/GloVe text file (``word v1 v2 ...``, an optional ``count dim``
    header line); every row must have the same dimension (and ``dim`` when given)."""
    file = Path(path)
    if not file.is_file():
        raise ValueError(f"word-vector file {path} does not exist")
    out: dict[str, list[float]] = {}
    width: int | None = None
    with file.open(encoding="utf-8") as f:
        for n, line in enumerate(f, start=1):
            parts = line.rstrip("\n").rstrip().split(" ")
            if n == 1 and len(parts) == 2 and all(p.isdigit() for p in parts):
                continue  # word2vec header: "count dim"
            if len(parts) < 2:
                continue
            try:
                values = [float(v) for v in parts[1:]]
            except ValueError:
                raise ValueError(f"{path} line {n}: '{parts[0]}' is followed by something that is not a number "
                                 "(expected the word2vec/GloVe text format: word v1 v2 ...)") from None
            width = len(values) if width is None else width
            if len(values) != width:
                raise ValueError(f"{path} line {n}: '{parts[0]}' has {len(values)} values, earlier rows {width}")
            out[parts[0]] = values
    if width is None:
        raise ValueError(f"{path} holds no word vectors")
    if dim is not None and width != dim:
        raise ValueError(f"the word vectors in {path} have {width} dimensions but embedding_dim is {dim}: set "
                         f"embedding_dim: {width} (or use vectors of {dim} dimensions)")
    return out


@LAYERS.register("TokenEmbedding", width_args=())
class TokenEmbedding(nn.Embedding):
    """Token ids (id 0 = ``<pad>``, 1 = ``<unk>``) to vectors, plus the mask channel the
    ``Packed*`` layers read: (T,) ids in, (T, embedding_dim + 1) out. Rows are learned, or start
    from ``vectors:`` (a word2vec/GloVe text file): the vector of each token of the training
    vocabulary is copied in when the vocabulary is attached (``attach_vocabulary``, at assembly);
    ``freeze: true`` keeps them fixed. ``num_embeddings`` must exceed the largest id (validation
    checks it: the text source's ``max_size`` + 2)."""

    def __init__(self, num_embeddings: int, embedding_dim: int, vectors: str | None = None,
                 freeze: bool = False, max_norm: float | None = None) -> None:
        super().__init__(num_embeddings, embedding_dim, padding_idx=0, max_norm=max_norm)
        self.vectors_file = vectors  # read only when training starts (attach_vocabulary); checked by check_vectors
        self.freeze = freeze
        if freeze:
            self.weight.requires_grad_(False)
        self.found: int | None = None

    def attach_vocabulary(self, tokens: list[str]) -> int:
        """Copy the pretrained vector of every vocabulary token (row i = token i); returns how many."""
        if self.vectors_file is None or self.weight.device.type == "meta":
            return 0
        table = read_vectors(self.vectors_file, self.embedding_dim)
        rows = [(i, table[t]) for i, t in enumerate(tokens[: self.num_embeddings]) if t in table]
        with torch.no_grad():
            for i, vec in rows:
                self.weight[i] = torch.tensor(vec, dtype=self.weight.dtype)
            self.weight[0] = 0.0
        self.found = len(rows)
        return len(rows)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ids = x.long() if x.is_floating_point() else x
        emb = super().forward(ids)
        return torch.cat([emb, (ids != 0).unsqueeze(-1).to(emb.dtype)], dim=-1)

    def dp_output_shape(self, in_shape: tuple[int, ...]) -> tuple[int, ...]:
        if len(in_shape) != 1:
            raise ValueError(f"expects (T,) token ids per sample, got {tuple(in_shape)}")
        return (in_shape[0], self.embedding_dim + 1)


@LAYERS.register("StepDecoder", width_args=("hidden_size",))
class StepDecoder(nn.Module):
    """One-to-many: a GRU decoder unrolled for ``steps`` steps from one input vector. The vector
    sets the initial state; each step feeds back the previous step's output (zeros first). (F,)
    in, (steps, out_features) out; ``in_features`` is inferred."""

    def __init__(self, in_features: int, steps: int, hidden_size: int, out_features: int) -> None:
        super().__init__()
        if steps < 1:
            raise ValueError(f"steps must be at least 1, got {steps}")
        self.steps, self.out_features = int(steps), int(out_features)
        self.init = nn.Linear(in_features, hidden_size)
        self.cell = nn.GRUCell(out_features, hidden_size)
        self.head = nn.Linear(hidden_size, out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.tanh(self.init(x))
        prev = x.new_zeros(x.shape[0], self.out_features)
        outs = []
        for _ in range(self.steps):
            h = self.cell(prev, h)
            prev = self.head(h)
            outs.append(prev)
        return torch.stack(outs, dim=1)

    def dp_output_shape(self, in_shape: tuple[int, ...]) -> tuple[int, ...]:
        if len(in_shape) != 1:
            raise ValueError(f"expects one vector (F,) per sample, got {tuple(in_shape)}: Flatten first")
        return (self.steps, self.out_features)


def check_padding(model: nn.Module, layout: str | None) -> str | None:
    """Why this network cannot take these samples' padding (None when it can): padded sequences
    need packed recurrent layers (a plain one would read the padding as steps), and a packed
    layer needs the mask channel (padded sequences, or a TokenEmbedding before it)."""
    packed = [n for n, m in model.named_modules() if isinstance(m, (PackedRNN, PackedLSTM, PackedGRU))]
    inner = {id(m.rnn) for m in model.modules() if isinstance(m, (PackedRNN, PackedLSTM, PackedGRU))}
    plain = [n for n, m in model.named_modules() if isinstance(m, nn.RNNBase) and id(m) not in inner]
    masked = layout == "padded_sequence" or any(isinstance(m, TokenEmbedding) for m in model.modules())
    if layout in ("padded_sequence", "padded_tokens") and plain:
        return (f"layer '{plain[0]}' is a plain recurrent layer, but these sequences are padded to one length: it "
                "would read the padding as steps; use PackedLSTM / PackedGRU / PackedRNN (they pack on the mask"
                + (" that a TokenEmbedding adds)" if layout == "padded_tokens" else " channel)"))
    if packed and not masked:
        return (f"layer '{packed[0]}' packs on a mask channel (the last feature: 1 for a real step, 0 for padding) "
                "that these samples do not have: feed it padded sequences (sequence_csv, sequence_npz, "
                "digit_sequences) or token ids through a TokenEmbedding, or use LSTM / GRU / RNN")
    return None

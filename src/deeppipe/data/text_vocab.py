"""The vocabulary of a text experiment, fitted on the training split only (like normalisation
statistics) and kept with the trained model.

``fit_vocabulary`` counts the training rows' token ids (the text source's encoding), keeps the
tokens seen ``min_freq`` times or more, the ``max_size`` most frequent (ties: first seen first),
after ``<pad>`` (0) and ``<unk>`` (1). ``TokenRemap`` sits in front of the network and turns
encoding ids into vocabulary ids (everything outside the vocabulary: ``<unk>``); ``encode``
tokenises new text exactly as the source did (``data.tokenise``, no scikit-learn), for a saved or
served model: its requests are raw strings (``tracking.serving``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from deeppipe.data.tokenise import PAD, UNK, analyzer


def fit_vocabulary(x_train: np.ndarray, text_meta: dict[str, Any]) -> dict[str, Any]:
    """The vocabulary of ``x_train`` (encoding ids of the training split's texts, 0-padded)."""
    tokens = text_meta["tokens"]
    ids = x_train.astype(np.int64).reshape(-1)
    counts = np.bincount(ids[ids > UNK], minlength=len(tokens))
    kept = np.flatnonzero(counts >= int(text_meta["min_freq"]))
    kept = kept[np.argsort(-counts[kept], kind="stable")][: int(text_meta["max_size"])]
    return {"tokens": ["<pad>", "<unk>", *(tokens[i] for i in kept)], "encoding_ids": [int(i) for i in kept],
            "encoding_size": len(tokens), "max_length": int(text_meta["max_length"]),
            "analyzer": {k: text_meta[k] for k in ("lowercase", "token_pattern", "ngram_range")}}


class TokenRemap(nn.Module):
    """Encoding ids -> vocabulary ids (a lookup table buffer); unknown or out-of-range ids -> <unk>."""

    def __init__(self, vocab: dict[str, Any]) -> None:
        super().__init__()
        table = torch.full((int(vocab["encoding_size"]),), UNK, dtype=torch.long)
        table[PAD] = PAD
        table[torch.as_tensor(vocab["encoding_ids"], dtype=torch.long)] = torch.arange(2, len(vocab["tokens"]))
        self.register_buffer("table", table)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ids = x.long()
        inside = (ids >= 0) & (ids < self.table.numel())
        return torch.where(inside, self.table[ids.clamp(0, self.table.numel() - 1)], UNK).to(x.dtype)


def encode(texts: list[str], vocab: dict[str, Any]) -> np.ndarray:
    """New texts as the saved model takes them ((N, max_length) ids, 0-padded), tokenised as in training."""
    tokenise = analyzer(vocab["analyzer"])
    lookup = {t: e for t, e in zip(vocab["tokens"][2:], vocab["encoding_ids"])}
    out = np.zeros((len(texts), int(vocab["max_length"])), dtype=np.float32)
    for i, text in enumerate(texts):
        ids = [lookup.get(tok, UNK) for tok in tokenise(str(text))][: out.shape[1]]
        out[i, :len(ids)] = ids
    return out


def decode(ids: np.ndarray, text_meta: dict[str, Any]) -> list[str]:
    """Encoding ids (the text source's) back to texts of their words (n-grams left out): a text
    model's example request, which tokenises back to the same words."""
    tokens = text_meta["tokens"]
    return [" ".join(tokens[int(i)] for i in row if int(i) > UNK and " " not in tokens[int(i)]) for row in ids]


def union(vocabs: list[dict[str, Any]]) -> dict[str, Any]:
    """One vocabulary for an ensemble of text models: every member's tokens (members of one data
    set share its encoding, so each member's own ``TokenRemap`` still sees exactly its vocabulary);
    what a served ensemble tokenises its strings with."""
    first = vocabs[0]
    seen: dict[int, str] = {}
    for v in vocabs:
        if v["analyzer"] != first["analyzer"] or v["encoding_size"] != first["encoding_size"]:
            raise ValueError("the members' texts were encoded differently: they cannot share one request")
        seen.update({int(e): t for t, e in zip(v["tokens"][2:], v["encoding_ids"])})
    return {**first, "tokens": ["<pad>", "<unk>", *seen.values()], "encoding_ids": list(seen)}

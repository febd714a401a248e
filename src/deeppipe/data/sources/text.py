"""Labelled text from a CSV (a text column, a label column) as token ids.

Tokenisation is scikit-learn's word analyzer (lowercasing, its token pattern, optional n-grams),
written out without scikit-learn in ``data.tokenise`` so a served model tokenises exactly the same. Ingest only *encodes*: every distinct token gets an id in order of
first appearance (0 is ``<pad>``, 1 is ``<unk>``) and texts are padded with 0 to the longest (or
``max_length``). The **vocabulary** (``min_freq``, ``max_size``) is fitted later, on the training
split only, like the normalisation statistics (``data.text_vocab``): the network's first module
maps every id outside it to ``<unk>``, so validation and test text never shapes the vocabulary,
and the saved model keeps the vocabulary and the tokeniser's settings to encode new text the same way.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field

from deeppipe.config import Strict
from deeppipe.data.sources.base import (
    DataError,
    Reader,
    Samples,
    SourceInfo,
    _classification_task,
    read_frame,
)
from deeppipe.data.tokenise import PAD, TOKEN_PATTERN, UNK, analyzer  # noqa: F401 (re-exported)
from deeppipe.errors import unknown
from deeppipe.registry import SOURCES


class TextCsvSource(Strict):
    """A CSV with one text per row and its label."""

    type: Literal["text_csv"]
    path: str
    text: str = Field(description="the text column")
    label: str = Field(description="the label column")
    lowercase: bool = True
    token_pattern: str = Field(TOKEN_PATTERN, description="scikit-learn's token_pattern (a regular expression)")
    ngram_range: tuple[int, int] = Field((1, 1), description="scikit-learn's ngram_range: (1, 2) adds bigrams")
    min_freq: int = Field(1, ge=1, description="a token seen fewer times in the training split is <unk>")
    max_size: int = Field(20_000, ge=1, le=10_000_000,
                          description="the most frequent training tokens kept (the Embedding needs max_size + 2 rows)")
    max_length: int | None = Field(None, ge=1, le=100_000, description="keep only the first N tokens of each text")


def settings_of(src: TextCsvSource) -> dict[str, Any]:
    return {"lowercase": src.lowercase, "token_pattern": src.token_pattern, "ngram_range": list(src.ngram_range),
            "min_freq": src.min_freq, "max_size": src.max_size}


def _read(src: TextCsvSource) -> Samples:

    path = Path(src.path)
    frame = read_frame(path, keep_default_na=False)
    for key in ("text", "label"):
        if getattr(src, key) not in frame.columns:
            raise unknown("column", getattr(src, key), list(frame.columns), path=f"data.source.{key}", file=str(path))
    settings = settings_of(src)
    try:
        tokenise = analyzer(settings)
        docs = [tokenise(str(t)) for t in frame[src.text]]
    except Exception as exc:  # a token pattern scikit-learn's re cannot compile
        raise DataError(f"the tokeniser fails ({type(exc).__name__}: {exc})", file=str(path),
                        path="data.source.token_pattern", found=src.token_pattern) from None
    index: dict[str, int] = {}
    ids = [[index.setdefault(tok, len(index) + 2) for tok in doc] for doc in docs]
    longest = max((len(d) for d in ids), default=0)
    if longest == 0:
        raise DataError("no text has a token", file=str(path), path="data.source.text")
    t = longest if src.max_length is None else min(src.max_length, longest)
    x = np.zeros((len(ids), t), dtype=np.float32)
    for i, doc in enumerate(ids):
        x[i, :min(len(doc), t)] = doc[:t]
    labels = [str(v) for v in frame[src.label]]
    names = sorted(set(labels))
    if len(names) < 2:
        raise DataError("the labels hold a single class", file=str(path), path="data.source.label")
    task = _classification_task(names)
    lookup = {n: i for i, n in enumerate(names)}
    y = np.asarray([lookup[v] for v in labels], dtype=np.int64)
    tokens = ["<pad>", "<unk>", *index]  # ingest id i = tokens[i]
    meta = {"source": f"csv:{path}", "layout": "padded_tokens",  # 0-padded ids: models.layers.packed.check_padding
            "text": {**settings, "tokens": tokens, "max_length": int(t)}}
    return Samples(x, y, task, meta=meta)


@SOURCES.register("text_csv", config=TextCsvSource)
class TextCsvReader(Reader):
    @staticmethod
    def read(src: Any, on_error: str) -> Samples:
        return _read(src)

    @classmethod
    def peek(cls, src: Any, on_error: str = "raise") -> SourceInfo:
        """The largest id the network sees is the vocabulary's (at most ``max_size`` + 1), not the encoding's."""
        data = _read(src)
        info = SourceInfo.of(data)
        biggest = min(src.max_size + 1, len(data.meta["text"]["tokens"]) - 1)
        return SourceInfo(info.sample_shape, info.task, info.num_samples, 0, info.class_counts, True, float(biggest),
                          layout=info.layout)

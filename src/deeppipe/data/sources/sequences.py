"""Labelled sequences of different lengths: a long-format CSV (one row per step, a sequence id
column) or an NPZ of concatenated steps with their lengths, for sequence classification
(one label per sequence), per-step tagging (one label per step) and CTC (an unaligned label
sequence per sequence, NPZ ``y_lengths``).

Sequences are padded to the longest with a **mask channel** appended as the last feature (1 for
a real step, 0 for padding; ``models.layers.packed``): inputs ``(N, T, F + 1)``. The ``Packed*``
recurrent layers pack on it, so padding never changes a prediction; the features are scaled per
feature with statistics of the training split's real steps only (``layout: padded_sequence``,
``data.normalize``). Targets: ``(N,)`` classes; tagging ``(N, T)`` with -100 at padding (what the
per-step cross-entropy ignores); CTC ``(N, S)`` label ids 1.. (0 is the blank) with -1 after the end.
No pickle is read: NPZ arrays are plain numeric ones.
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field

from deeppipe.config import Strict
from deeppipe.data.sources.base import DataError, Reader, Samples, _classification_task, read_frame
from deeppipe.data.task import Task
from deeppipe.errors import unknown
from deeppipe.registry import SOURCES

log = logging.getLogger(__name__)
PAD_TAG = -100  # per-step targets at padded steps (cross-entropy's ignore_index)
PAD_LABEL = -1  # CTC label sequences after their end (the ctc loss's pad)
LAYOUT = "padded_sequence"


class SequenceCsvSource(Strict):
    """Long format: one row per step; rows of one sequence share its ``id``."""

    type: Literal["sequence_csv"]
    path: str
    id: str = Field(description="the sequence id column")
    label: str = Field(description="the label column")
    order: str | None = Field(None, description="the time/order column inside a sequence (default: row order)")
    features: list[str] | None = Field(None, description="feature columns (default: every other column)")
    per: Literal["sequence", "step"] = Field("sequence", description="sequence: one label per sequence "
                                             "(classification); step: one label per row (tagging)")
    max_length: int | None = Field(None, ge=1, le=100_000, description="keep only the first N steps of each")


class SequenceNpzSource(Strict):
    """``x``: every sequence's steps one after the other (S, F) or (S,), ``lengths`` (N,); ``y``:
    one label per sequence (N,), per step (S,) with ``per: step``, or, with ``y_lengths`` (N,),
    the concatenated label sequences for CTC; optional ``classes``: the class names."""

    type: Literal["sequence_npz"]
    path: str
    per: Literal["sequence", "step"] = "sequence"
    max_length: int | None = Field(None, ge=1, le=100_000)


def pad(seqs: list[np.ndarray], max_length: int | None = None) -> np.ndarray:
    """(N, T, F + 1) float32: each sequence's first ``max_length`` steps, zeros after, the mask last."""
    t = max(len(s) for s in seqs) if max_length is None else min(max_length, max(len(s) for s in seqs))
    f = seqs[0].shape[1]
    out = np.zeros((len(seqs), t, f + 1), dtype=np.float32)
    for i, s in enumerate(seqs):
        n = min(len(s), t)
        out[i, :n, :f] = s[:n]
        out[i, :n, f] = 1.0
    return out


def pad_labels(labels: list[np.ndarray], t: int, fill: int) -> np.ndarray:
    out = np.full((len(labels), t), fill, dtype=np.int64)
    for i, lab in enumerate(labels):
        out[i, :min(len(lab), t)] = lab[:t]
    return out


def _classes(values: np.ndarray) -> tuple[list[str], np.ndarray]:
    """Class names (sorted; numerically when every label is a number) and each value's index."""
    text = np.asarray([str(v) for v in values])
    names = sorted(set(text.tolist()))
    with contextlib.suppress(ValueError):  # numbers in numeric order
        names = sorted(names, key=float)
    lookup = {n: i for i, n in enumerate(names)}
    return names, np.asarray([lookup[v] for v in text], dtype=np.int64)


def _samples(seqs: list[np.ndarray], labels: list[np.ndarray] | np.ndarray, names: list[str], per: str,
             max_length: int | None, where: str, ctc: bool = False) -> Samples:
    if len(seqs) < 2:
        raise DataError(f"{len(seqs)} sequence(s): too few to split", file=where)
    x = pad(seqs, max_length)
    t = x.shape[1]
    meta: dict[str, Any] = {"source": where, "layout": LAYOUT, "max_length": int(t)}
    if ctc:
        y = pad_labels([lab + 1 for lab in labels], max(len(lab) for lab in labels), PAD_LABEL)
        return Samples(x, y, Task("ctc", len(names) + 1, ("<blank>", *names)), meta=meta)
    if per == "step":
        if len(names) < 2:
            raise DataError("the per-step labels hold a single class", file=where, expected="at least 2 classes")
        return Samples(x, pad_labels(list(labels), t, PAD_TAG), Task("tagging", len(names), tuple(names)), meta=meta)
    task = _classification_task(names)
    y = np.asarray(labels, dtype=np.int64)
    return Samples(x, y, task, meta=meta)


def _read_csv(src: SequenceCsvSource, on_error: str) -> Samples:
    import pandas as pd

    path = Path(src.path)
    frame = read_frame(path)
    cols = list(frame.columns)
    for key in ("id", "label", "order"):
        name = getattr(src, key)
        if name is not None and name not in cols:
            raise unknown("column", name, cols, path=f"data.source.{key}", file=str(path))
    skip = {src.id, src.label, src.order}
    features = src.features or [c for c in cols if c not in skip]
    for i, c in enumerate(features):
        if c not in cols:
            raise unknown("column", c, cols, path=f"data.source.features[{i}]", file=str(path))
    if not features:
        raise DataError("no feature column left besides id, label and order", file=str(path))
    values = frame[features].apply(pd.to_numeric, errors="coerce")
    bad = values.isna().to_numpy().any(axis=1) | frame[src.label].isna().to_numpy()
    if src.order is not None:
        bad |= frame[src.order].isna().to_numpy()
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        if on_error == "raise":
            col = next((c for c in [*features, src.label, src.order] if c and pd.isna(
                values[c].iloc[row] if c in features else frame[c].iloc[row])), src.label)
            raise DataError(f"{int(bad.sum())} row(s) with a missing or non-numeric value", file=str(path),
                            expected="numbers in every feature column and a label in every row (or data.on_error: "
                                     "skip to drop those sequences)", found=f"column {col!r}, row {row + 2}")
        dropped = frame.loc[bad, src.id].unique()
        keep = ~frame[src.id].isin(dropped).to_numpy()
        log.warning("dropped %d sequence(s) of %s with a missing or non-numeric value (data.on_error: skip)",
                    len(dropped), path)
        frame, values = frame[keep], values[keep]
    names, codes = _classes(frame[src.label].to_numpy())
    frame = frame.assign(_code=codes, _row=np.arange(len(frame)))
    seqs, labels = [], []
    for key, group in frame.groupby(src.id, sort=False):  # sequences in order of first appearance
        group = group.sort_values([src.order, "_row"] if src.order else "_row", kind="stable")
        seqs.append(values.loc[group.index].to_numpy(dtype=np.float32))
        if src.per == "sequence":
            found = group["_code"].unique()
            if len(found) != 1:
                raise DataError(f"sequence {key!r} has {len(found)} different labels", file=str(path),
                                path="data.source.per", expected="one label per sequence (or per: step, tagging)",
                                found=[names[i] for i in found[:5]])
            labels.append(int(found[0]))
        else:
            labels.append(group["_code"].to_numpy())
    return _samples(seqs, labels if src.per == "step" else np.asarray(labels), names, src.per, src.max_length,
                    str(path))


def _read_npz(src: SequenceNpzSource) -> Samples:
    path = Path(src.path)
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot read the npz ({type(exc).__name__}: {exc}; object arrays are refused: store "
                        "the steps concatenated with their lengths)", file=str(path)) from None
    for key in ("x", "lengths", "y"):
        if key not in arrays:
            raise unknown("npz array", key, list(arrays), path="data.source.path", file=str(path))
    x, lengths, y = arrays["x"], arrays["lengths"].astype(np.int64).reshape(-1), arrays["y"]
    x = x[:, None] if x.ndim == 1 else x.reshape(len(x), -1)
    if (lengths < 1).any() or lengths.sum() != len(x):
        raise DataError("lengths do not add up to the steps in x", file=str(path),
                        expected=f"positive lengths summing to {len(x)}", found=int(lengths.sum()))
    if not np.isfinite(x).all():
        raise DataError("x holds NaN or infinite values", file=str(path))
    cuts = np.cumsum(lengths)[:-1]
    seqs = [s.astype(np.float32) for s in np.split(x, cuts)]
    names = [str(c) for c in arrays["classes"]] if "classes" in arrays else None
    ctc = "y_lengths" in arrays
    if ctc or src.per == "step":
        split_at = np.cumsum(arrays["y_lengths"].astype(np.int64))[:-1] if ctc else cuts
        expected = int(arrays["y_lengths"].sum()) if ctc else int(lengths.sum())
        if len(y) != expected:
            raise DataError(f"y has {len(y)} labels", file=str(path), expected=f"{expected} (the sum of "
                            f"{'y_lengths' if ctc else 'lengths'})", found=len(y))
        codes = y.astype(np.int64)
        names = names or [str(i) for i in range(int(codes.max()) + 1)]
        if codes.min() < 0 or codes.max() >= len(names):
            raise DataError("a label is not a class index", file=str(path), expected=f"0 .. {len(names) - 1}",
                            found=int(codes.max() if codes.max() >= len(names) else codes.min()))
        return _samples(seqs, np.split(codes, split_at), names, src.per, src.max_length, str(path), ctc=ctc)
    if len(y) != len(seqs):
        raise DataError(f"y has {len(y)} labels for {len(seqs)} sequences", file=str(path),
                        expected="one label per sequence (or per: step)", found=len(y))
    if names is None:
        names, codes = _classes(y)
    else:
        codes = y.astype(np.int64)
    return _samples(seqs, codes, names, src.per, src.max_length, str(path))


@SOURCES.register("sequence_csv", config=SequenceCsvSource)
class SequenceCsvReader(Reader):
    @staticmethod
    def read(src: Any, on_error: str) -> Samples:
        return _read_csv(src, on_error)


@SOURCES.register("sequence_npz", config=SequenceNpzSource)
class SequenceNpzReader(Reader):
    @staticmethod
    def read(src: Any, on_error: str) -> Samples:
        return _read_npz(src)


class DigitSequencesSource(Strict):
    """Real variable-length sequences that ship with scikit-learn: each 8x8 digit read column by
    column (or row by row) with its blank columns (rows) at either side dropped, so a "1" is a
    shorter sequence than a "0" (2 to 8 steps of 8 pixel values in [0, 1]).
    ``strings``: CTC data instead: ``count`` strings of ``min_digits`` .. ``max_digits`` random
    digits (seeded), their trimmed columns joined by one blank column, labelled by the digit string
    (unaligned: which columns belong to which digit is not given)."""

    type: Literal["digit_sequences"]
    read: Literal["columns", "rows"] = "columns"
    strings: bool = False
    count: int = Field(1500, ge=10, le=100_000, description="strings: how many")
    min_digits: int = Field(1, ge=1, le=20)
    max_digits: int = Field(3, ge=1, le=20)
    seed: int = 0


def _trimmed(image: np.ndarray, read: str) -> np.ndarray:
    steps = image.T if read == "columns" else image  # (steps, 8)
    ink = np.flatnonzero(steps.sum(axis=1) > 0)
    return steps[ink[0]:ink[-1] + 1] if len(ink) else steps[:1]


def _read_digits(src: DigitSequencesSource) -> Samples:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = (bunch.images / 16.0).astype(np.float32)
    seqs = [_trimmed(im, src.read) for im in images]
    names = [str(i) for i in range(10)]
    where = f"sklearn:digits ({src.read}, trimmed)"
    if not src.strings:
        return _samples(seqs, bunch.target.astype(np.int64), names, "sequence", None, where)
    if src.max_digits < src.min_digits:
        from deeppipe.errors import SpecError

        raise SpecError("max_digits is below min_digits", path="data.source.max_digits",
                        expected=f">= {src.min_digits}", found=src.max_digits)
    rng = np.random.default_rng(src.seed)
    gap = np.zeros((1, 8), dtype=np.float32)
    strings, labels = [], []
    for _ in range(src.count):
        picks = rng.integers(0, len(images), size=int(rng.integers(src.min_digits, src.max_digits + 1)))
        strings.append(np.concatenate([part for i in picks for part in (seqs[i], gap)][:-1]))
        labels.append(bunch.target[picks].astype(np.int64))
    return _samples(strings, labels, names, "sequence", None, f"{where}, strings", ctc=True)


@SOURCES.register("digit_sequences", config=DigitSequencesSource)
class DigitSequencesReader(Reader):
    @staticmethod
    def read(src: Any, on_error: str) -> Samples:
        return _read_digits(src)

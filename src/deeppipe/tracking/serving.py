"""What the served model does with a request: check it, run the network, shape the answer.

``mlflow models serve`` turns an ``MlflowException`` with ``INVALID_PARAMETER_VALUE`` into a 400
answer carrying its message, so every refusal here names what was wrong in a sentence (shapes and
counts, never the request's values) instead of answering nonsense with 200: probabilities for
``output: logits``, ``NaN`` for a NaN input, or a prediction from 0-16 pixels of a model that was
trained on [0, 1] images.
"""

from __future__ import annotations

from typing import Any, NoReturn

import numpy as np
import torch

OUTPUTS = {"classification": ("proba", "label", "logits"), "regression": ("value",)}
IMAGE_RANGE = (0.0, 1.0)
TOLERANCE = 1e-4


class RequestError(ValueError):
    """A request the model cannot answer; the message goes back to the client."""


def output_modes(task: Any) -> tuple[str, ...]:
    return OUTPUTS["classification" if task.is_classification else "regression"]


def input_contract(artifact: Any) -> dict[str, Any]:
    """What a request must look like, stored in the MLmodel's metadata for people and clients."""
    shape = list(artifact.input_shape)
    out = {"shape": ["N", *shape], "dtype": "float32", "outputs": list(output_modes(artifact.task))}
    vocab = artifact.meta.get("vocabulary")
    if vocab:  # a text model: raw strings, tokenised as in training
        return {**out, "shape": ["N"], "dtype": "string", "tokeniser": dict(vocab["analyzer"]),
                "max_length": int(vocab["max_length"]), "vocabulary_size": len(vocab["tokens"]),
                "description": ("raw texts, one string per row (a list of strings or a one-column table), "
                                "tokenised as in training; tokens beyond the first "
                                f"{int(vocab['max_length'])} are dropped, tokens outside the training "
                                f"vocabulary read as <unk>. (deeppipe.tracking.serving.predict also takes "
                                f"token ids of the training encoding, (N, {int(vocab['max_length'])}) numbers; "
                                "the logged MLflow signature is a string column)")}
    if len(shape) == 3:
        out["range"] = list(IMAGE_RANGE)
        out["description"] = (f"images (N, {', '.join(map(str, shape))}) with pixel values in [0, 1] "
                              "(divide 8-bit pixels by 255); channels first")
    else:
        out["description"] = f"rows of {int(np.prod(shape))} raw feature values (the model standardises them)"
    return out


def texts_of(model_input: Any) -> list[str] | None:
    """A text request's strings (a string, a list / array / one-column table of strings); None
    when it holds numbers only (token ids, checked as any numeric request); a RequestError for
    anything else (no row, a row that is not a string, several columns)."""
    raw = model_input.to_numpy() if hasattr(model_input, "to_numpy") else model_input
    if isinstance(raw, str):
        return [raw]
    if isinstance(raw, (list, tuple)):
        raw = np.asarray([v[0] if isinstance(v, (list, tuple)) and len(v) == 1 else v for v in raw] or [], dtype=object)
        if raw.ndim != 1:  # rows of several values: token ids when they are numbers
            return None if all(isinstance(v, (int, float)) for v in raw.reshape(-1)) else _not_texts(raw)
    if not isinstance(raw, np.ndarray):
        raise RequestError(f"expected texts (a list of strings or a one-column table of strings), got a "
                           f"{type(model_input).__name__}")
    if raw.dtype.kind in "biuf":
        return None
    if raw.ndim == 2 and raw.shape[1] == 1:
        raw = raw[:, 0]
    if raw.ndim != 1:
        raise RequestError(f"expected one text per row (a list of strings or a one-column table), got an array "
                           f"of shape {tuple(raw.shape)}")
    if raw.size == 0:
        raise RequestError("the request holds no text: expected one string per row")
    if all(isinstance(v, str) for v in raw):
        return [str(v) for v in raw]
    if not any(isinstance(v, str) for v in raw) and all(_number(v) for v in raw):
        return None
    return _not_texts(raw)


def _number(v: Any) -> bool:
    return isinstance(v, (int, float, np.number)) and not isinstance(v, bool)


def _not_texts(raw: np.ndarray) -> NoReturn:
    kinds = sorted({type(v).__name__ for v in raw.reshape(-1) if not isinstance(v, str)})
    raise RequestError(f"expected a text (a string) in every row; found {', '.join(kinds[:3])} values "
                       "(token ids are accepted as numbers only, never mixed with texts)")


def prepare(artifact: Any, model_input: Any) -> np.ndarray:
    """The request as a float32 array of the model's input shape, or a RequestError. A text
    model's strings are tokenised with its training vocabulary (``data.text_vocab.encode``)."""
    shape = tuple(artifact.input_shape)
    vocab = artifact.meta.get("vocabulary")
    if vocab:
        texts = texts_of(model_input)
        if texts is not None:
            from deeppipe.data.text_vocab import encode

            return encode(texts, vocab)
    raw = model_input.to_numpy() if hasattr(model_input, "to_numpy") else model_input
    try:
        arr = np.asarray(raw, dtype=np.float32)
    except (TypeError, ValueError):
        raise RequestError("inputs must be numbers") from None
    per_sample = int(np.prod(shape))
    if arr.size == 0 or arr.size % per_sample:
        raise RequestError(f"expected inputs of shape (N, {', '.join(map(str, shape))}) ({per_sample} values "
                           f"per sample), got an array of shape {tuple(arr.shape)}")
    arr = arr.reshape((-1, *shape))
    bad = ~np.isfinite(arr)
    if bad.any():
        rows = np.flatnonzero(bad.reshape(len(arr), -1).any(axis=1))
        raise RequestError(f"{int(bad.sum())} input value(s) are NaN or infinite (first in sample {int(rows[0])})")
    if len(shape) == 3:
        lo, hi = float(arr.min()), float(arr.max())
        if lo < IMAGE_RANGE[0] - TOLERANCE or hi > IMAGE_RANGE[1] + TOLERANCE:
            raise RequestError(f"pixel values must be in [0, 1]; found values from {lo:g} to {hi:g} "
                               "(divide 8-bit images by 255)")
    return arr


def predict(artifact: Any, net: torch.nn.Module, model_input: Any, output: str | None = None) -> np.ndarray:
    """Probabilities (default), labels or logits for a classifier; values for regression."""
    from deeppipe.evaluation.metrics import probabilities

    task = artifact.task
    modes = output_modes(task)
    output = output or modes[0]
    if output not in modes:
        raise RequestError(f"unknown output '{output}': this {task.kind} model answers {', '.join(modes)}")
    arr = prepare(artifact, model_input)
    with torch.inference_mode():
        out = net(torch.from_numpy(arr)).float().numpy()
    if not task.is_classification or output == "logits":
        return out
    probs = probabilities(task, out).astype(np.float32)
    return probs.argmax(axis=1) if output == "label" else probs

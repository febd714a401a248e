"""What the served model does with a request: check it, run the network, shape the answer.

``mlflow models serve`` turns an ``MlflowException`` with ``INVALID_PARAMETER_VALUE`` into a 400
answer carrying its message, so every refusal here names what was wrong in a sentence (shapes and
counts, never the request's values) instead of answering nonsense with 200: probabilities for
``output: logits``, ``NaN`` for a NaN input, or a prediction from 0-16 pixels of a model that was
trained on [0, 1] images.
"""

from __future__ import annotations

from typing import Any

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
    if len(shape) == 3:
        out["range"] = list(IMAGE_RANGE)
        out["description"] = (f"images (N, {', '.join(map(str, shape))}) with pixel values in [0, 1] "
                              "(divide 8-bit pixels by 255); channels first")
    else:
        out["description"] = f"rows of {int(np.prod(shape))} raw feature values (the model standardises them)"
    return out


def prepare(artifact: Any, model_input: Any) -> np.ndarray:
    """The request as a float32 array of the model's input shape, or a RequestError."""
    shape = tuple(artifact.input_shape)
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

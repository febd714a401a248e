"""Losses of per-step outputs: cross-entropy over every real step of a tagged sequence (padded
steps carry the target -100 and count for nothing). CTC lives with the other losses
(``training.losses.ctc``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F

from deeppipe.registry import LOSSES

PAD_TAG = -100  # data.sources.sequences.PAD_TAG


@LOSSES.register("step_cross_entropy", aliases=("tagging_cross_entropy",), tasks=("tagging",), applies="softmax")
def step_cross_entropy(label_smoothing: float = 0.0, class_weights: Sequence[float] | None = None):
    """Softmax cross-entropy of (N, T, C) logits against (N, T) classes, averaged over the real
    steps only (targets -100 at padding are ignored, however long the padding)."""
    weights = None if class_weights is None else torch.as_tensor(list(class_weights), dtype=torch.float32)

    def fn(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if out.dim() != 3 or y.shape != out.shape[:2]:
            raise ValueError(f"step_cross_entropy needs (N, T, C) outputs and (N, T) targets, got {tuple(out.shape)} "
                             f"and {tuple(y.shape)}")
        w = None if weights is None else weights.to(out.device)
        return F.cross_entropy(out.reshape(-1, out.shape[-1]).float(), y.reshape(-1).long(), weight=w,
                               ignore_index=PAD_TAG, label_smoothing=label_smoothing)

    return fn


def check_step_outputs(task: Any, in_shape: tuple[int, ...], out_shape: tuple[int, ...], loss: Any,
                       file: str | None) -> None:
    """Validation of per-step outputs: a tagging or CTC task needs a (T, C) network (tagging: one
    output row per input step); a (T, C) network for a task with one label per sample is refused,
    and so is CTC on labels that are not sequences (its misfit loss is refused by task already)."""
    from deeppipe.errors import SpecError

    c = task.num_outputs
    if not task.per_step:
        raise SpecError(f"the network outputs {list(out_shape)} per sample (one row per step), but the data has "
                        f"one {task.kind} label per sample", path="model", file=file,
                        expected=f"a network ending in {c} output(s) (an LSTM with output: last, or a Flatten "
                        "before the head), or per-step labels (data.source per: step, tagging)", found=list(out_shape))
    if len(out_shape) != 2 or out_shape[-1] != c:
        what = "CTC label sequences" if task.kind == "ctc" else "per-step tags"
        raise SpecError(f"{what} need per-step outputs (T, {c}); this network outputs {list(out_shape)} per sample",
                        path="model", file=file,
                        expected=f"(T, {c}): a recurrent layer with output: all, then Linear out_features: auto",
                        found=list(out_shape))
    if task.kind == "tagging" and in_shape and out_shape[0] != in_shape[0]:
        raise SpecError(f"the network gives {out_shape[0]} steps of tags for inputs of {in_shape[0]} steps",
                        path="model", file=file, expected=f"({in_shape[0]}, {c}): one row per input step",
                        found=list(out_shape))

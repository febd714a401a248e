"""Validation after each epoch: the training loss (no mixing, no penalty), accuracy for
classifiers, and whatever the caller's ``metrics_fn`` computes from the whole validation set."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

if TYPE_CHECKING:  # deeppipe.data imports scikit-learn (1 s): keep worker start-up lean
    from deeppipe.data.batches import BatchSource
    from deeppipe.data.task import Task

MetricsFn = Callable[[np.ndarray, np.ndarray], dict[str, float]]


@torch.inference_mode()
def validate(
    model: nn.Module,
    source: BatchSource,
    loss_fn,
    task: Task,
    *,
    autocast: contextlib.AbstractContextManager,
    channels_last: bool = False,
    metrics_fn: MetricsFn | None = None,
) -> dict[str, float]:
    """``val/loss``, ``val/accuracy`` (per token for (N, T, C) tagging outputs) and
    ``val/<name>`` for each value ``metrics_fn(y_true, outputs)`` returns; eval mode inside."""
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    was_training = model.training
    model.eval()
    recon, kind = task.kind == "reconstruction", task.kind
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), device=device, dtype=torch.long)
    count = judged = 0  # samples; predictions judged
    outs, targets = [], []
    try:
        with autocast:
            for xb, yb in source.epoch(0):
                if recon and yb.shape != xb.shape:
                    yb = xb
                if channels_last and xb.dim() == 4:
                    xb = xb.contiguous(memory_format=torch.channels_last)
                out = model(xb)
                loss_sum += loss_fn(out, yb).float() * xb.shape[0]
                count += xb.shape[0]
                if kind == "multiclass" and yb.shape == out.shape[:-1]:  # (N, C) or (N, T, C)
                    correct += (out.argmax(dim=-1) == yb).sum()
                    judged += yb.numel()
                elif kind == "binary":
                    correct += ((out.reshape(-1) > 0) == (yb.reshape(-1) > 0.5)).sum()
                    judged += yb.numel()
                if metrics_fn is not None:
                    outs.append(out.float().cpu())
                    targets.append(yb.cpu())
    finally:
        model.train(was_training)
    rec = {"val/loss": float(loss_sum) / max(count, 1)}
    if judged:
        rec["val/accuracy"] = int(correct) / judged
    if metrics_fn is not None and outs:
        extra = metrics_fn(torch.cat(targets).numpy(), torch.cat(outs).numpy())
        for k, v in extra.items():
            if np.isscalar(v):
                rec[k if k.startswith("val/") else f"val/{k}"] = float(v)
    return rec

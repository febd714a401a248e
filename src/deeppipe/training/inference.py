"""Raw model outputs for an array of inputs: eval mode, no autograd, batched."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from deeppipe.training.device import resolve_device


def _model_device(model: nn.Module) -> torch.device:
    for t in model.parameters():
        return t.device
    for t in model.buffers():
        return t.device
    return torch.device("cpu")


def _batch(x: Any, rows: slice, dev: torch.device) -> torch.Tensor:
    """One batch on ``dev``: uint8 images go over as uint8 and become float32 there
    (``data.storage.to_compute``), images still in their files are decoded a batch at a time."""
    if hasattr(x, "pixels"):  # data.storage.ImageArray
        from deeppipe.data.storage import to_compute

        return to_compute(torch.from_numpy(np.ascontiguousarray(x.rows(rows).pixels())).to(dev, non_blocking=True))
    part = x[rows]
    part = torch.from_numpy(np.ascontiguousarray(part)) if isinstance(part, np.ndarray) else part
    return part.to(dev, non_blocking=True)


def predict(
    model: nn.Module,
    x: Any,
    *,
    batch_size: int = 1024,
    device: str | torch.device | None = None,
) -> np.ndarray:
    """Outputs (logits for classifiers) as float32 numpy, computed batch by batch; ``x`` an array,
    a tensor or lazy images (``data.storage``), which are read one batch at a time.

    The model is put in eval mode (dropout off, batch norm uses running statistics) and put
    back in the mode it was in; with ``device`` given it is moved there first.
    """
    dev = _model_device(model) if device is None else resolve_device(device, path="device")
    model.to(dev)
    xt = torch.from_numpy(np.ascontiguousarray(x)) if isinstance(x, np.ndarray) else x
    was_training = model.training
    model.eval()
    outs = []
    try:
        with torch.inference_mode():
            for i in range(0, len(xt), batch_size):
                out = model(_batch(xt, slice(i, i + batch_size), dev))
                outs.append(out.float().cpu())
    finally:
        model.train(was_training)
    if not outs:  # no rows: still the right trailing shape when the model accepts 0 rows
        try:
            with torch.inference_mode():
                return model.eval()(xt[:0].to(dev)).float().cpu().numpy()
        except RuntimeError:
            return np.zeros((0,), dtype=np.float32)
        finally:
            model.train(was_training)
    return torch.cat(outs).numpy()

"""Normalisation that travels with the model.

Statistics come from the training split only and are stored as buffers of a ``Standardize``
module placed in front of the network: a saved model therefore predicts on raw inputs, and
augmentation works on raw [0, 1] images.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


def compute_stats(x: np.ndarray, layout: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel (images, (N, C, ...)) or per-feature (tables, (N, F); sequences, (N, T, F) with
    ``layout: sequence``: over every step, never per step; padded sequences with a mask channel,
    ``layout: padded_sequence``: over the real steps only, the mask left as is) mean and std."""
    if layout == "padded_sequence":  # (N, T, F + mask): the real steps' features; the mask channel kept as is
        real = x[x[..., -1] > 0.5][:, :-1]
        mean = np.append(real.mean(axis=0, dtype=np.float64), 0.0)
        std = np.append(real.std(axis=0, dtype=np.float64), 1.0)
    elif layout == "sequence":
        mean = x.mean(axis=(0, 1), dtype=np.float64)
        std = x.std(axis=(0, 1), dtype=np.float64)
    elif x.ndim >= 3:
        axes = (0, *range(2, x.ndim))
        mean = x.mean(axis=axes, dtype=np.float64)
        std = x.std(axis=axes, dtype=np.float64)
    else:
        mean = x.mean(axis=0, dtype=np.float64)
        std = x.std(axis=0, dtype=np.float64)
    std = np.where(std < 1e-8, 1.0, std)  # constant features: leave them centred, not divided by 0
    return mean.astype(np.float32), std.astype(np.float32)


class Standardize(nn.Module):
    """(x - mean) / std with the statistics as buffers (saved in the state dict)."""

    def __init__(self, mean: np.ndarray | torch.Tensor, std: np.ndarray | torch.Tensor, sample_ndim: int,
                 feature_last: bool = False) -> None:
        super().__init__()
        # images: one statistic per channel (axis 1); sequences (N, T, F): per feature (the last axis)
        shape = (1,) * sample_ndim + (-1,) if feature_last else (1, -1) + (1,) * (sample_ndim - 1)
        self.register_buffer("mean", torch.as_tensor(np.asarray(mean), dtype=torch.float32).reshape(shape))
        self.register_buffer("std", torch.as_tensor(np.asarray(std), dtype=torch.float32).reshape(shape))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std

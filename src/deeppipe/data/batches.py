"""Batch sources: what the trainer iterates over.

The trainer only needs ``for x, y in source.epoch(epoch)`` and ``len(source)``. In-memory data
(small images, tabular sets) lives on the training device and is sliced there: no DataLoader,
no per-sample Python, which is what keeps the loop as fast as a hand-written one. Per-sample
augmentation (albumentations in worker processes) provides another BatchSource.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol, runtime_checkable

import numpy as np
import torch


@runtime_checkable
class BatchSource(Protocol):
    """Anything that yields ``(inputs, targets)`` batches on the training device, epoch by epoch."""

    batch_size: int
    num_samples: int

    def epoch(self, epoch: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]: ...

    def __len__(self) -> int: ...


class TensorBatches:
    """Batches sliced from tensors held on the device; reshuffled every epoch with a seeded generator.

    The permutation for epoch ``e`` depends only on ``(seed, e)``, so a resumed run sees
    exactly the batches an uninterrupted run would have seen.
    """

    def __init__(
        self,
        x: torch.Tensor | np.ndarray,
        y: torch.Tensor | np.ndarray,
        batch_size: int,
        *,
        shuffle: bool = True,
        seed: int = 0,
        drop_last: bool = False,
        device: torch.device | str | None = None,
        batch_transform=None,
    ) -> None:
        if len(x) != len(y):
            raise ValueError(f"inputs and targets differ in length: {len(x)} != {len(y)}")
        x, y = torch.as_tensor(x), torch.as_tensor(y)
        device = torch.device(device) if device is not None else x.device
        self.x = x.to(device)
        self.y = y.to(device)
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.seed = int(seed)
        self.drop_last = drop_last
        self.num_samples = len(x)
        self.batch_transform = batch_transform  # e.g. device-side augmentation: (x, generator) -> x

    def __len__(self) -> int:
        n, b = self.num_samples, self.batch_size
        return n // b if self.drop_last else (n + b - 1) // b

    def epoch(self, epoch: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        gen = torch.Generator(device="cpu").manual_seed(self.seed * 1_000_003 + epoch)
        if self.shuffle:
            order = torch.randperm(self.num_samples, generator=gen).to(self.x.device)
        else:
            order = None
        for i in range(len(self)):
            sl = slice(i * self.batch_size, (i + 1) * self.batch_size)
            if order is None:
                xb, yb = self.x[sl], self.y[sl]
            else:
                idx = order[sl]
                xb, yb = self.x.index_select(0, idx), self.y.index_select(0, idx)
            if self.batch_transform is not None:
                xb = self.batch_transform(xb, gen)
            yield xb, yb

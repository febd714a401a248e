"""Batch sources: what the trainer iterates over.

The trainer only needs ``for x, y in source.epoch(epoch)`` and ``len(source)``. In-memory data
(small images, tabular sets) lives on the training device and is sliced there: no DataLoader,
no per-sample Python, which is what keeps the loop as fast as a hand-written one. Data too large
for the GPU's free memory (``fits_on_device``) stays in host memory instead, each batch gathered
there and copied over (not pinned: pinning would hold a second copy of data that large). Per-sample
augmentation (albumentations in worker processes) provides another BatchSource.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Protocol, runtime_checkable

import numpy as np
import torch

from deeppipe.data.storage import ImageArray, as_batch_tensor, base_tensor, to_compute
from deeppipe.data.stream import BatchReader, is_streamed

log = logging.getLogger(__name__)


DEVICE_SHARE = 0.5  # of the GPU's free memory resident data may take; activations need the rest


def fits_on_device(nbytes: int, device: torch.device, free: int | None = None) -> bool:
    """Whether ``nbytes`` of data may live on ``device`` (always on the CPU); ``free``: the
    device's free bytes (default: what CUDA reports now)."""
    if device.type != "cuda":
        return True
    if free is None:
        free = torch.cuda.mem_get_info(device)[0]
    return nbytes <= DEVICE_SHARE * free


def _place(x: torch.Tensor, device: torch.device, free: int | None = None) -> torch.Tensor:
    """``x`` on ``device`` when it fits there, else where it is (host memory)."""
    if x.device == device or fits_on_device(x.element_size() * x.numel(), device, free):
        return x.to(device)
    gib = x.element_size() * x.numel() / 2**30
    log.info("%.2f GiB of data exceed half of %s's free memory: batches are copied from host memory", gib, device)
    return x


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
    exactly the batches an uninterrupted run would have seen. uint8 images stay uint8 on the
    device and become float32 / 255 one batch at a time (``data.storage.to_compute``); images
    streamed from their files (``data.stream``) are decoded by DataLoader workers in the same
    order, the targets still sliced on the device.
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
        self.num_samples = len(x)
        x, y = as_batch_tensor(x), torch.as_tensor(y)
        lazy = is_streamed(x) or isinstance(x, ImageArray)
        device = torch.device(device) if device is not None else y.device if lazy else x.device
        self.rows: torch.Tensor | None = None  # the batches' rows of x (uint8 on the CPU: a subset uncopied)
        if isinstance(x, ImageArray):
            x, self.rows = base_tensor(x) if device.type == "cpu" else (as_batch_tensor(x.pixels()), None)
        self.reader = BatchReader(x, pin=device.type == "cuda") if is_streamed(x) else None
        self.x = x if self.reader is not None else _place(x, device)
        self.y = y.to(device)
        self.device = device
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.seed = int(seed)
        self.drop_last = drop_last
        self.batch_transform = batch_transform  # e.g. device-side augmentation: (x, generator) -> x

    def __len__(self) -> int:
        n, b = self.num_samples, self.batch_size
        return n // b if self.drop_last else (n + b - 1) // b

    def epoch(self, epoch: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        gen = torch.Generator(device="cpu").manual_seed(self.seed * 1_000_003 + epoch)
        order = torch.randperm(self.num_samples, generator=gen) if self.shuffle else None
        sliced = order is not None and self.rows is None and self.reader is None  # x sliced where it lives
        x_order = order.to(self.x.device) if sliced else None
        if order is not None:
            order = order.to(self.device)
        decoded = self._decoded(order)
        nb = self.device.type == "cuda"
        for i in range(len(self)):
            sl = slice(i * self.batch_size, (i + 1) * self.batch_size)
            if decoded is not None:
                xb = next(decoded)
            elif self.rows is not None:
                xb = self.x.index_select(0, self.rows[sl] if order is None else self.rows[order[sl]])
            else:
                xb = self.x[sl] if x_order is None else self.x.index_select(0, x_order[sl])
            yb = self.y[sl] if order is None else self.y.index_select(0, order[sl])
            xb = to_compute(xb.to(self.device, non_blocking=nb))
            if self.batch_transform is not None:
                xb = self.batch_transform(xb, gen)
            yield xb, yb

    def _decoded(self, order: torch.Tensor | None) -> Iterator[torch.Tensor] | None:
        """Streamed images: the workers decode this epoch's batches, in the batches' order."""
        if self.reader is None:
            return None
        full = order.cpu().numpy() if order is not None else np.arange(self.num_samples)
        return iter(self.reader.read([full[i * self.batch_size:(i + 1) * self.batch_size] for i in range(len(self))]))

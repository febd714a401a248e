"""Per-sample albumentations in DataLoader worker processes, as a BatchSource.

Used when a declared pipeline has a step with no batch version (OneOf, ElasticTransform, ...).
Each DataLoader item is a whole batch: the sampler yields (epoch, batch index, indices) keys, the
dataset augments those images and returns stacked tensors. So there is one inter-process hand-off
per batch rather than per image, and the augmentation of batch b in epoch e is seeded by
(seed, e, b) alone: the same whatever the number of workers or which worker ran it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import albumentations as A
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from deeppipe.augment.transform import augment_one, seed_compose, stack_same_shape
from deeppipe.data.storage import is_lazy


def default_workers() -> int:
    """One worker per core, at most 4.

    The training process mostly waits (on the GPU, or on the next batch), so leaving a core idle
    for it costs more throughput than it saves: on 2 cores, 1 worker measured 0.81 of a bare
    single-process loop, 2 workers 0.93 (benchmarks/loader_throughput.py, loaded machine).
    """
    return max(1, min(4, os.cpu_count() or 1))


class _BatchKeys(Sampler):
    """Yields one key per batch; ``epoch`` is set by the source before each pass (main process)."""

    def __init__(self, n: int, batch_size: int, seed: int, shuffle: bool) -> None:
        self.n, self.batch_size, self.seed, self.shuffle = n, batch_size, seed, shuffle
        self.epoch = 0

    def __len__(self) -> int:
        return (self.n + self.batch_size - 1) // self.batch_size

    def __iter__(self) -> Iterator[tuple[int, int, np.ndarray]]:
        # Same permutation rule as TensorBatches: a function of (seed, epoch) only.
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        order = torch.randperm(self.n, generator=gen).numpy() if self.shuffle else np.arange(self.n)
        for b in range(len(self)):
            yield self.epoch, b, order[b * self.batch_size : (b + 1) * self.batch_size]


class _AugmentedBatches(Dataset):
    def __init__(self, x: np.ndarray, y: np.ndarray, compose: A.BaseCompose, seed: int) -> None:
        self.x, self.y, self.compose, self.seed = x, y, compose, seed

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, key: tuple[int, int, np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
        epoch, b, idx = key
        seed_compose(self.compose, self.seed, epoch, b)
        xb = stack_same_shape([augment_one(self.compose, self.x[i]) for i in idx])
        return torch.from_numpy(xb), torch.from_numpy(np.ascontiguousarray(self.y[idx]))


def _worker_init(_: int) -> None:
    # Workers are processes: one thread each, or they fight the trainer and each other for cores.
    torch.set_num_threads(1)


class AlbumentationsBatches:
    """BatchSource: albumentations per sample in ``num_workers`` processes, batches to ``device``."""

    def __init__(
        self,
        x: np.ndarray,
        y: np.ndarray,
        compose: A.BaseCompose,
        batch_size: int,
        *,
        seed: int = 0,
        shuffle: bool = True,
        device: torch.device | str = "cpu",
        num_workers: int | None = None,
    ) -> None:
        if len(x) != len(y):
            raise ValueError(f"inputs and targets differ in length: {len(x)} != {len(y)}")
        # uint8 or streamed images (data.storage) stay so: each worker converts or decodes its samples
        self.x = x if is_lazy(x) else np.ascontiguousarray(x, dtype=np.float32)
        self.y = np.ascontiguousarray(y)
        self.batch_size = int(batch_size)
        self.num_samples = len(x)
        self.device = torch.device(device)
        self.num_workers = default_workers() if num_workers is None else int(num_workers)
        self.sampler = _BatchKeys(len(x), self.batch_size, int(seed), shuffle)
        if self.num_workers:
            # OpenCV's thread pool does not survive fork(): a worker that touches a pool the
            # parent had started can hang. One OpenCV thread in the parent before forking makes
            # the children safe (the parent does no per-sample work on this path).
            import cv2

            cv2.setNumThreads(1)
        pin = self.device.type == "cuda"
        self.loader = DataLoader(
            _AugmentedBatches(self.x, self.y, compose, int(seed)),
            batch_size=None,  # the dataset already returns batches
            sampler=self.sampler,
            num_workers=self.num_workers,
            pin_memory=pin,
            worker_init_fn=_worker_init if self.num_workers else None,
            persistent_workers=self.num_workers > 0,
            prefetch_factor=4 if self.num_workers else None,
        )

    def __len__(self) -> int:
        return len(self.sampler)

    def epoch(self, epoch: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        self.sampler.epoch = int(epoch)
        nb = self.device.type == "cuda"
        for xb, yb in self.loader:
            yield xb.to(self.device, non_blocking=nb), yb.to(self.device, non_blocking=nb)

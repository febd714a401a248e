"""Image folders read from their files while training, not held in memory (``data.stream``).

``StreamedImages`` stands where the ingested array would: it knows each sample's file and decodes
on demand, so the stored data set is a file list and the training batches are decoded by DataLoader
worker processes (``TensorBatches`` over it, or the albumentations loader, which indexes it per
sample). Split, augmentation and the order of batches are the in-memory path's own, so a streamed
run sees the same batches; the normalisation statistics are estimated on a seeded sample of the
training split (``data.stream_stats``) instead of every image, which is the one difference.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from deeppipe.data.sources.base import DataError
from deeppipe.data.sources.decode import read_image
from deeppipe.data.storage import ImageArray, to_float

log = logging.getLogger(__name__)


def decode(path: str, size: tuple[int, int], channels: int) -> np.ndarray:
    """One image as the in-memory reader decodes it (uint8, or float32 for 16-bit files); a file
    that became unreadable since ingest stops the run with its name."""
    try:
        return read_image(Path(path), size, channels)
    except Exception as exc:  # PIL raises many types for corrupt files
        raise DataError(f"cannot read image while streaming: {exc}", file=path,
                        expected="a readable PNG/JPEG (it was listed at ingest)") from None


class StreamedImages:
    """(N, C, H, W) images still in their files, seen as float32 in [0, 1] like ``ImageArray``.

    ``x[i]`` / ``x[idx]`` decode those rows; ``x.rows(idx)`` is a lazy subset; ``x.batch(idx)``
    decodes a batch as uint8 (what the workers send: a quarter of the float bytes).
    """

    dtype = np.dtype(np.float32)
    ndim = 4

    def __init__(self, files: list[str] | np.ndarray, size: tuple[int, int], channels: int, *,
                 stats_sample: int = 10_000, seed: int = 0, root: str | None = None) -> None:
        if root is None:  # the folder once, each file's name below it as UTF-8 bytes: ~30 bytes an image
            paths = [str(f) for f in files]
            root = os.path.dirname(paths[0]) if len(paths) == 1 else os.path.commonpath(paths) if paths else ""
            cut = len(os.path.join(root, ""))  # root and its separator ("" when relative paths share no folder)
            files = np.array([f[cut:].encode() for f in paths], dtype=bytes)
        self.root, self.names = str(root), np.asarray(files, dtype=bytes)
        self.image_size, self.channels = (int(size[0]), int(size[1])), int(channels)
        self.stats_sample, self.seed = int(stats_sample), int(seed)
        self._sampled: Any = None

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self.names), self.channels, *self.image_size)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    def __len__(self) -> int:
        return len(self.names)

    def file(self, i: int) -> str:
        return os.path.join(self.root, self.names[i].decode())

    def _one(self, i: int) -> np.ndarray:
        im = decode(self.file(i), self.image_size, self.channels)
        return to_float(im) if im.dtype == np.uint8 else im

    def __getitem__(self, key: Any) -> np.ndarray:
        if isinstance(key, (int, np.integer)):
            return self._one(int(key))
        idx = np.arange(len(self))[key]
        return np.stack([self._one(int(i)) for i in idx]) if len(idx) else np.zeros((0, *self.shape[1:]), np.float32)

    def __iter__(self) -> Iterator[np.ndarray]:
        for i in range(len(self)):
            yield self._one(i)

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        out = self[:]
        return out if dtype is None else out.astype(dtype, copy=False)

    def astype(self, dtype: Any, copy: bool = True) -> np.ndarray:
        return np.asarray(self).astype(dtype, copy=False)

    def rows(self, idx: Any) -> StreamedImages:
        return StreamedImages(self.names[idx], self.image_size, self.channels, stats_sample=self.stats_sample,
                              seed=self.seed, root=self.root)

    def batch(self, idx: np.ndarray) -> np.ndarray:
        """Those images stacked as uint8 when all are 8-bit (converted on the device), else float32."""
        ims = [decode(self.file(i), self.image_size, self.channels) for i in idx]
        if all(im.dtype == np.uint8 for im in ims):
            return np.stack(ims) if ims else np.zeros((0, *self.shape[1:]), np.uint8)
        return np.stack([to_float(im) if im.dtype == np.uint8 else im for im in ims])

    # statistics on a seeded sample: reading every image of a large set twice would cost an epoch
    def _sample(self) -> Any:
        """The sampled training images, decoded once as uint8 (an ImageArray: its statistics run
        in chunks and are kept for the next call), float32 if some file is wider than 8 bits."""
        if self._sampled is None:
            n = len(self)
            pick = np.arange(n)
            if n > self.stats_sample:
                pick = np.sort(np.random.default_rng(self.seed).choice(n, self.stats_sample, replace=False))
                log.info("normalisation statistics estimated on %d of %d streamed training images (seed %d)",
                         self.stats_sample, n, self.seed)
            raw = self.batch(pick)
            self._sampled = ImageArray(raw) if raw.dtype == np.uint8 else raw
        return self._sampled

    def mean(self, axis: Any = None, dtype: Any = np.float64) -> np.ndarray:
        return self._sample().mean(axis=axis, dtype=dtype)

    def std(self, axis: Any = None, dtype: Any = np.float64) -> np.ndarray:
        return self._sample().std(axis=axis, dtype=dtype)

    def max(self, *_: Any, **__: Any) -> np.float32:
        return np.float32(1.0)

    def min(self, *_: Any, **__: Any) -> np.float32:
        return np.float32(0.0)

    def fingerprint(self) -> bytes:
        return self.root.encode() + b"\n" + b"\n".join(self.names.tolist())

    def describe(self) -> str:
        return f"streamed from {len(self)} files"

    def to_arrays(self) -> dict[str, np.ndarray]:
        head = {"type": "image_folder", "size": list(self.image_size), "channels": self.channels,
                "stats_sample": self.stats_sample, "seed": self.seed}  # type: the source that restores it
        return {"stream": np.asarray(json.dumps({**head, "root": self.root})), "files": self.names}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> StreamedImages:
        head = json.loads(str(arrays["stream"]))
        return cls(arrays["files"], tuple(head["size"]), head["channels"], root=head["root"],
                   stats_sample=head["stats_sample"], seed=head["seed"])

    def __repr__(self) -> str:
        return f"StreamedImages({len(self)} files, {self.shape[1:]})"


def is_streamed(x: Any) -> bool:
    return isinstance(x, StreamedImages)


# ------------------------------------------------------------------------- the worker loader
class _Keys(Sampler):
    """The batches' indices, in the order the BatchSource drew for this epoch (main process)."""

    def __init__(self) -> None:
        self.chunks: list[np.ndarray] = []

    def __len__(self) -> int:
        return len(self.chunks)

    def __iter__(self) -> Iterator[np.ndarray]:
        return iter(self.chunks)


class _Decode(Dataset):
    def __init__(self, images: StreamedImages) -> None:
        self.images = images

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, idx: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(self.images.batch(idx))


def _one_thread(_: int) -> None:
    torch.set_num_threads(1)  # a worker decodes; threads would fight the trainer for cores


def stream_workers() -> int:
    """One decoding process per core, at most 4 (as the augmentation loader)."""
    return max(1, min(4, os.cpu_count() or 1))


class BatchReader:
    """Decodes given index chunks in worker processes, in order, prefetching a few batches."""

    def __init__(self, images: StreamedImages, *, num_workers: int | None = None, pin: bool = False) -> None:
        self.keys = _Keys()
        workers = stream_workers() if num_workers is None else int(num_workers)
        self.loader = DataLoader(_Decode(images), batch_size=None, sampler=self.keys, num_workers=workers,
                                 pin_memory=pin, worker_init_fn=_one_thread if workers else None,
                                 persistent_workers=workers > 0, prefetch_factor=4 if workers else None)

    def read(self, chunks: list[np.ndarray]) -> Iterator[torch.Tensor]:
        self.keys.chunks = chunks
        yield from self.loader


# ----------------------------------------------------------------------------- when to stream
def memory_budget(spec_budget: float | None) -> int:
    """Bytes an in-memory data set may take: ``data.memory_budget`` (GiB), else a quarter of RAM."""
    if spec_budget is not None:
        return int(spec_budget * 2**30)
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 4
    except (ValueError, OSError, AttributeError):
        return 4 * 2**30


def should_stream(data: Any, num_samples: int | None, sample_shape: tuple[int, ...]) -> bool:
    """``data.stream`` true, or ``auto`` with an image folder whose uint8 pixels exceed the budget."""
    if data.stream is True:
        return True
    if data.stream is False or data.source.type != "image_folder" or num_samples is None:
        return False
    need = int(num_samples) * int(np.prod(sample_shape))
    return need > memory_budget(data.memory_budget)


def check_streaming(spec: Any, num_samples: int | None, sample_shape: tuple[int, ...],
                    file: str | None = None) -> None:
    """What a streamed run cannot do, refused at validation: an offline augmented copy (a whole
    training set in memory) and ``data.resize`` (which resizes an array; a folder's images are
    resized as they are decoded, to ``data.source.size``)."""
    from deeppipe.errors import SpecError

    if num_samples is not None and spec.data.limit is not None:
        num_samples = min(num_samples, spec.data.limit)  # what ingest will weigh
    if not should_stream(spec.data, num_samples, sample_shape):
        return
    why = ("data.stream is true" if spec.data.stream is True else
           f"the images ({num_samples} of {list(sample_shape)}) exceed data.memory_budget, so stream: auto streams them")
    if spec.augment is not None and spec.augment.offline is not None:
        raise SpecError(f"augment.offline materialises an augmented training set in memory, but {why}",
                        path="augment.offline", file=file, found="augment.offline",
                        expected="online augmentation only (augment.train) when streaming, or data.stream: false")
    if getattr(spec.data, "resize", None) is not None:
        raise SpecError(f"data.resize resizes images held in memory, but {why}", path="data.resize", file=file,
                        found=spec.data.resize, expected="data.source.size: the size the images are decoded at "
                        "(no data.resize), or data.stream: false")

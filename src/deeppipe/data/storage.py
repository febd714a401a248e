"""8-bit images kept as bytes: in memory, in the stored data set, and up to the training device.

Every reader used to turn images into float32 in [0, 1] at ingest, four bytes per pixel for data
that has one. ``ImageArray`` holds the uint8 pixels (an array or a memory map of the stored data
set) and shows the float32 [0, 1] view every stage expects: indexing it returns float32 copies of
just those rows, ``rows`` a lazy subset that stays uint8. The training batches (``TensorBatches``)
keep the bytes on the device and convert each batch there (``to_compute``): ``u8 / 255`` in float32
is exactly what the readers computed before, so models, metrics and predictions are unchanged.
"""

from __future__ import annotations

import json
import warnings
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

SCALE = 255.0  # a uint8 pixel p means p / 255 (white is 1.0)
_CHUNK = 1024  # rows converted at a time when a statistic runs over the whole array (~25 MB of float64)


def to_float(raw: np.ndarray) -> np.ndarray:
    """uint8 pixels as float32 in [0, 1], bit for bit what the readers computed (float32 / 255)."""
    out = raw.astype(np.float32)
    out /= np.float32(SCALE)
    return out


def to_compute(xb: torch.Tensor) -> torch.Tensor:
    """A batch as the network's input: uint8 pixels become float32 / 255 (on the batch's device)."""
    if xb.dtype == torch.uint8:
        return xb.to(torch.float32).div_(SCALE)
    return xb


class ImageArray:
    """uint8 images (N, C, H, W) seen as float32 in [0, 1] (see the module docstring).

    ``x[i]``, ``x[idx]``, ``np.asarray(x)``: float32 copies; ``x.rows(idx)``: an ImageArray of those
    rows that copies nothing (the same ``raw``, an ``index`` into it); ``x.pixels()``: the rows'
    uint8 pixels; ``x.raw``: the whole base (e.g. a read-only memory map of dataset.npz).
    """

    dtype = np.dtype(np.float32)

    def __init__(self, raw: np.ndarray, index: np.ndarray | None = None) -> None:
        if raw.dtype != np.uint8:
            raise TypeError(f"ImageArray holds uint8 pixels, not {raw.dtype}")
        self.raw, self.index = raw, None if index is None else np.asarray(index, dtype=np.int64)
        self._moments: dict[tuple[int, ...], tuple[np.ndarray, np.ndarray]] = {}  # mean then std: one pass

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self), *self.raw.shape[1:])

    @property
    def ndim(self) -> int:
        return self.raw.ndim

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    @property
    def nbytes(self) -> int:
        """Bytes of these rows' pixels (one per pixel), not the float32 view's four."""
        return self.size

    def __len__(self) -> int:
        return len(self.raw) if self.index is None else len(self.index)

    def _take(self, key: Any) -> np.ndarray:
        if self.index is None:
            return np.asarray(self.raw[key])
        if not isinstance(key, tuple):
            return np.asarray(self.raw[self.index[key]])
        picked = self.raw[self.index[key[0]]]  # rows first, then the rest of the key
        one = isinstance(key[0], (int, np.integer))
        return np.asarray(picked[key[1:]] if one else picked[(slice(None), *key[1:])])

    def pixels(self) -> np.ndarray:
        """These rows' uint8 pixels (the base itself when no index selects rows of it)."""
        return self.raw if self.index is None else self.raw[self.index]

    def __getitem__(self, key: Any) -> np.ndarray:
        return to_float(self._take(key))

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        out = to_float(np.asarray(self.pixels()))
        return out if dtype is None else out.astype(dtype, copy=False)

    def astype(self, dtype: Any, copy: bool = True) -> np.ndarray:
        return np.asarray(self).astype(dtype, copy=False)

    def rows(self, idx: Any) -> ImageArray:
        """Those rows, without a copy: an index into the same base."""
        whole = np.arange(len(self.raw)) if self.index is None else self.index
        return ImageArray(self.raw, whole[idx])

    def max(self, *_: Any, **__: Any) -> np.float32:
        return self._extreme(np.max)

    def min(self, *_: Any, **__: Any) -> np.float32:
        return self._extreme(np.min)

    def _extreme(self, fn: Any) -> np.float32:
        if not self.size:
            return np.float32(np.nan)
        parts = [fn(self._take(slice(i, i + _CHUNK))) for i in range(0, len(self), _CHUNK)]
        return to_float(np.asarray(fn(parts), dtype=np.uint8))[()]

    def mean(self, axis: Any = None, dtype: Any = np.float64) -> np.ndarray:
        return self._stats(axis)[0].astype(dtype)

    def std(self, axis: Any = None, dtype: Any = np.float64) -> np.ndarray:
        return np.sqrt(self._stats(axis)[1]).astype(dtype)

    def _stats(self, axis: Any) -> tuple[np.ndarray, np.ndarray]:
        key = tuple(range(self.ndim)) if axis is None else (axis,) if isinstance(axis, int) else tuple(axis)
        if key not in self._moments:
            self._moments[key] = _moments(self, key)
        return self._moments[key]

    def __repr__(self) -> str:
        return f"ImageArray(shape={self.shape}, uint8 as float32 in [0, 1])"


def _moments(x: ImageArray, axes: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Mean and (population) variance of the float view over ``axes`` (which must include 0),
    from per-chunk sums in float64: the whole float32 copy is never made."""
    if 0 not in axes:
        raise ValueError("statistics of an ImageArray run over the samples (axis 0)")
    total = total_sq = None
    count = 0
    for i in range(0, len(x), _CHUNK):
        part = x[i:i + _CHUNK].astype(np.float64)
        s, sq = part.sum(axis=axes), np.square(part).sum(axis=axes)
        total, total_sq = (s, sq) if total is None else (total + s, total_sq + sq)
        count += part.size // max(1, np.size(s))
    mean = total / count
    return mean, np.maximum(total_sq / count - mean**2, 0.0)


def rows(x: Any, idx: Any) -> Any:
    """``x[idx]`` that keeps lazy images lazy (uint8 or still in their files)."""
    return x.rows(idx) if hasattr(x, "rows") else x[idx]


def is_lazy(x: Any) -> bool:
    """Images that are not a plain float array: uint8 pixels or files read on demand."""
    return hasattr(x, "rows")


def as_batch_tensor(x: Any) -> Any:
    """What a BatchSource is given: lazy images as themselves (``TensorBatches`` gathers uint8
    batches from an ImageArray's base, DataLoader workers decode streamed ones), anything else
    as a tensor (uint8 pixels stay uint8: converted per batch)."""
    if is_lazy(x):
        return x
    if isinstance(x, np.ndarray) and not x.flags.writeable:
        return _tensor(x)
    return torch.as_tensor(np.ascontiguousarray(x) if isinstance(x, np.ndarray) else x)


def base_tensor(x: ImageArray) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The whole base as a tensor and the rows' index into it (None: all rows): a BatchSource on
    the CPU gathers each batch from the base, so a subset (the training split) is never copied."""
    return _tensor(x.raw), None if x.index is None else torch.from_numpy(x.index)


def _tensor(raw: np.ndarray) -> torch.Tensor:
    raw = np.ascontiguousarray(raw)
    if raw.flags.writeable:
        return torch.from_numpy(raw)
    with warnings.catch_warnings():  # a read-only memory map: batches are gathered from it, never written
        warnings.simplefilter("ignore", UserWarning)
        return torch.from_numpy(raw)


def schema_view(x: Any) -> np.ndarray:
    """What MLflow's dataset input records of lazy images: a float32 array of their shape that
    takes no memory (MLflow keeps a dataset's schema and profile, never its values; ``np.asarray``
    would decode or convert every image)."""
    return np.broadcast_to(np.zeros((), np.float32), x.shape) if is_lazy(x) else x


def content_bytes(x: Any) -> bytes:
    """The bytes that identify an input array (data fingerprints): the pixels themselves for
    uint8 images (no float copy), the file list for streamed ones."""
    if isinstance(x, ImageArray):
        return np.ascontiguousarray(x.pixels()).tobytes()
    if hasattr(x, "fingerprint"):
        return x.fingerprint()
    return np.ascontiguousarray(x).tobytes()


# ------------------------------------------------------------------------- the stored data set
def npz_memmap(path: Path, member: str) -> np.ndarray | None:
    """A read-only memory map of one array of an uncompressed .npz (np.savez stores members
    uncompressed), or None where the format does not allow it (compressed, object arrays)."""
    with zipfile.ZipFile(path) as zf:
        try:
            info = zf.getinfo(f"{member}.npy")
        except KeyError:
            return None
        if info.compress_type != zipfile.ZIP_STORED:
            return None
    with open(path, "rb") as f:
        f.seek(info.header_offset)
        local = f.read(30)
        name_len, extra_len = int.from_bytes(local[26:28], "little"), int.from_bytes(local[28:30], "little")
        f.seek(info.header_offset + 30 + name_len + extra_len)
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
        else:
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
        offset = f.tell()
    if dtype.hasobject or not shape or 0 in shape:
        return None
    return np.memmap(path, dtype=dtype, mode="r", shape=shape, offset=offset, order="F" if fortran else "C")


def stored_inputs(x: Any) -> dict[str, np.ndarray]:
    """The arrays that store an input array: uint8 pixels with their scale, streamed images as
    their file list, anything else as itself."""
    if isinstance(x, ImageArray):
        return {"x": x.pixels(), "x_scale": np.asarray(SCALE)}
    if hasattr(x, "to_arrays"):
        return x.to_arrays()
    return {"x": x}


def restored_inputs(arrays: dict[str, np.ndarray], path: Path | None = None) -> Any:
    """``stored_inputs`` read back. uint8 pixels stored in ``path`` (an .npz) are memory-mapped
    when ``arrays`` leaves ``x`` out (``load_stored``); other inputs are read whole (tables and
    windows are small, and several stages write to or reshape them)."""
    if "stream" in arrays:  # files read while training: the source type that wrote them restores them
        from deeppipe.registry import SOURCES

        return SOURCES.get(json.loads(str(arrays["stream"]))["type"]).restore(arrays)
    if "x_scale" in arrays:
        raw = arrays.get("x")
        if raw is None and path is not None:
            raw = npz_memmap(path, "x")
        if raw is None and path is not None:  # written compressed by something else: read it
            with np.load(path, allow_pickle=False) as z:
                raw = z["x"]
        return ImageArray(np.asarray(raw) if not isinstance(raw, np.memmap) else raw)
    return arrays["x"]


def load_stored(path: Path) -> dict[str, np.ndarray]:
    """A stored data set's arrays, uint8 pixels left out (``restored_inputs`` maps them)."""
    with np.load(path, allow_pickle=False) as z:
        pixels = "x_scale" in z.files
        return {k: z[k] for k in z.files if not (pixels and k == "x")}


def describe(x: Any) -> str:
    """How an input array is held, for the ingest log line."""
    if isinstance(x, ImageArray):
        where = "memory-mapped" if isinstance(x.raw, np.memmap) and x.index is None else "in memory"
        return f"uint8, {x.nbytes / 2**20:.1f} MiB {where}"
    if hasattr(x, "describe"):
        return x.describe()
    return f"{np.asarray(x).dtype}, {np.asarray(x).nbytes / 2**20:.1f} MiB in memory"

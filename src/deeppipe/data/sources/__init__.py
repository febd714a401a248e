"""Readers for every ``data.source.type``, registered in ``deeppipe.registry.SOURCES``.

Each returns Samples: float32 inputs (images (N, C, H, W) in [0, 1], tables (N, F); 8-bit images as
``data.storage.ImageArray``, uint8 pixels seen as that float32 view), targets,
the Task, and how many of the last samples form the source's official test split. Add a source
type by decorating a Reader subclass with ``@SOURCES.register("name", config=YourSection)``.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

from deeppipe.data.sources.base import DataError, Reader, Samples, SourceInfo
from deeppipe.data.sources.images import read_idx
from deeppipe.data.storage import is_lazy, rows
from deeppipe.errors import SpecError
from deeppipe.registry import SOURCES

__all__ = ["DataError", "Reader", "Samples", "SourceInfo", "check_source", "load_source", "peek", "read_idx",
           "read_key", "source_configs", "source_stamp"]


def source_configs() -> tuple[type, ...]:
    """The section model of every registered source type (the ``data.source`` union)."""
    return tuple(e.config for e in SOURCES.entries())


# --------------------------------------------------------------------------- public API
def load_source(src: Any, *, on_error: str = "raise", limit: int | None = None) -> Samples:
    """Read the whole source named by a validated ``data.source`` section."""
    data = SOURCES.get(src.type, path="data.source.type").read(src, on_error)
    if not is_lazy(data.x) and not np.isfinite(data.x).all():  # uint8 pixels (or files) are finite
        raise DataError("inputs contain NaN or infinite values", file=str(getattr(src, "path", src.type)))
    data.meta["read_as"] = read_key(src, on_error, limit)
    if limit is not None and limit < len(data.x):
        n_train = len(data.x) - data.n_official_test
        keep_test = min(data.n_official_test, max(1, limit // 5)) if data.n_official_test else 0
        keep_train = min(n_train, limit - keep_test)
        idx = np.concatenate([np.arange(keep_train), n_train + np.arange(keep_test)]).astype(int)
        data = Samples(rows(data.x, idx), data.y[idx], data.task, keep_test, data.meta)
    return data


def check_source(src: Any, *, file: str | None = None) -> None:
    """Fail early (before any work) when a file-based source's path does not exist."""
    path = getattr(src, "path", None)
    if path is not None and not Path(path).exists():
        hint = " (run `make data` or `deeppipe data fashion-mnist`)" if "fashion" in str(path) else ""
        raise SpecError(f"data path does not exist{hint}", path="data.source.path", file=file,
                        expected="an existing file or folder", found=str(path))


def peek(src: Any, on_error: str = "skip") -> SourceInfo:
    """Sample shape and task, cheaply where the format allows (IDX headers, folder names); bad
    samples are refused or left out as ``data.on_error`` says, as reading them will."""
    return SOURCES.get(src.type, path="data.source.type").peek(src, on_error)


def read_key(src: Any, on_error: str, limit: int | None) -> str:
    """What an ingested data set was read as (the source section, on_error, limit): the Kedro hook
    checks a stored ``dataset.npz`` against the run's spec with it."""
    text = json.dumps([src.model_dump(mode="json"), on_error, limit], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def source_stamp(src: Any) -> str:
    """A cheap stamp of the raw data a source reads (the section, and each file's name, size and
    modification time): whether an interrupted run read the same files."""
    h = hashlib.sha256(json.dumps(src.model_dump(mode="json"), sort_keys=True).encode())
    path = getattr(src, "path", None)
    root = Path(path) if path else None
    files = [] if root is None else [root] if root.is_file() else sorted(root.rglob("*")) if root.is_dir() else []
    for f in files:
        if f.is_file():
            st = f.stat()
            h.update(f"{f.relative_to(root) if f != root else f.name}:{st.st_size}:{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]

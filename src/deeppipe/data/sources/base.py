"""What every source type shares: the ingested Samples, the cheap SourceInfo validation reads,
the DataError naming a file, and the Reader interface each registered type implements."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from deeppipe.data.task import Task
from deeppipe.errors import SpecError

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}


class DataError(SpecError):
    """Data that cannot be read: names the file and what was wrong with it."""


@dataclass
class Samples:
    """What ingestion yields: inputs, targets, the task they define, and how many of the last
    samples are the source's official test split. Stored as one .npz (``to_arrays``)."""

    x: np.ndarray
    y: np.ndarray
    task: Task
    n_official_test: int = 0
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def sample_shape(self) -> tuple[int, ...]:
        return tuple(int(d) for d in self.x.shape[1:])

    def targets(self) -> np.ndarray:
        """Targets as the loss wants them: int64 classes for multiclass, float32 otherwise."""
        integer = self.task.kind == "multiclass" or self.task.per_step  # per-step classes, label sequences
        return self.y.astype(np.int64) if integer else self.y.astype(np.float32)

    def to_arrays(self) -> dict[str, np.ndarray]:
        from deeppipe.data.storage import stored_inputs  # uint8 pixels stay uint8 in dataset.npz

        return {**stored_inputs(self.x), "y": self.y, "n_official_test": np.asarray(self.n_official_test),
                "task": np.asarray(json.dumps(self.task.to_dict())), "meta": np.asarray(json.dumps(self.meta))}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], path: Path | None = None) -> Samples:
        """``path``: the .npz they came from, whose uint8 pixels are then memory-mapped."""
        from deeppipe.data.storage import restored_inputs

        return cls(restored_inputs(arrays, path), arrays["y"], Task.from_dict(json.loads(str(arrays["task"]))),
                   int(arrays["n_official_test"]), json.loads(str(arrays["meta"])))


@dataclass(frozen=True)
class SourceInfo:
    """What validation needs, read as cheaply as the format allows (headers, folder names)."""

    sample_shape: tuple[int, ...]
    task: Task
    num_samples: int | None = None  # before data.limit
    n_official_test: int = 0
    class_counts: tuple[int, ...] | None = None  # of every sample, official test included
    integer_inputs: bool = False  # every input value a whole number >= 0 (token ids)
    max_input: float | None = None
    time_gap: int | None = None  # windows of a time series: split by time with this gap (data.split.time_gap)
    layout: str | None = None  # the samples' meta layout: "padded_sequence" / "padded_tokens" (masked padding)

    @classmethod
    def of(cls, data: Samples) -> SourceInfo:
        x = data.x
        if hasattr(x, "rows"):  # uint8 pixels or image files (data.storage): images, never token ids
            x = x[:0]
        whole = bool(x.size) and bool(np.all(x >= 0)) and bool(np.all(np.equal(np.mod(x, 1), 0)))
        counts = (tuple(int(c) for c in np.bincount(data.y.astype(np.int64), minlength=data.task.num_classes))
                  if data.task.is_classification and len(data.y) and data.y.ndim == 1 else None)
        window = data.meta.get("window")
        top = float(x.max()) if x.size else 1.0 if len(data.x) else None  # lazy images: in [0, 1]
        return cls(data.sample_shape, data.task, len(data.x), data.n_official_test, counts, whole,
                   top, int(window["horizon"]) - 1 if window else None, layout=data.meta.get("layout"))


def read_frame(path: Path, **kwargs: Any) -> Any:
    """A CSV as a pandas DataFrame; a file pandas cannot read is a DataError naming it."""
    import pandas as pd

    try:
        return pd.read_csv(path, **kwargs)
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read the CSV ({type(exc).__name__}: {exc})", file=str(path)) from None


def _classification_task(class_names: list[str] | tuple[str, ...]) -> Task:
    names = tuple(str(c) for c in class_names)
    if len(names) == 2:
        return Task("binary", 1, names)
    return Task("multiclass", len(names), names)


# ------------------------------------------------------------------------------ registered
# Each source type: its section (the record's `config`), a reader, and a cheap peek for validation.
class Reader:
    """A source type: ``read`` the whole set; ``peek`` its sample shape and task (default: read)."""

    @staticmethod
    def read(src: Any, on_error: str) -> Samples:
        raise NotImplementedError

    @classmethod
    def peek(cls, src: Any, on_error: str = "raise") -> SourceInfo:
        return SourceInfo.of(cls.read(src, on_error))

    @staticmethod
    def restore(arrays: dict[str, np.ndarray]) -> Any:
        """Inputs this type stored as something other than an array (``data.stream``: a file list)."""
        raise DataError("this source type stores its inputs as arrays; the stored data set names another",
                        file="dataset.npz", found=sorted(arrays))


def finite_rows(y: np.ndarray, on_error: str, where: str, what: str = "target") -> np.ndarray:
    """Which samples have finite numeric values in ``y`` (NaN or inf would become a class 'nan' or
    a loss of NaN): all of them, or an error (``on_error: raise``), or the others, counted (``skip``)."""
    if not (np.issubdtype(y.dtype, np.floating) or np.issubdtype(y.dtype, np.complexfloating)):
        return np.ones(len(y), dtype=bool)
    ok = np.isfinite(y.reshape(len(y), -1)).all(axis=1) if len(y) else np.ones(0, dtype=bool)
    if ok.all():
        return ok
    bad = np.flatnonzero(~ok)
    if on_error == "raise":
        raise DataError(f"{len(bad)} {what}(s) are NaN or infinite", file=where,
                        expected=f"finite {what} values (or data.on_error: skip to drop those samples)",
                        found=f"{y[bad[0]]!r} at index {int(bad[0])}")
    log.warning("dropped %d sample(s) of %s whose %s is NaN or infinite (data.on_error: skip)", len(bad), where,
                what)
    return ok


def _count_images(folder: Path) -> int:
    if not folder.is_dir():
        return 0
    return sum(1 for f in folder.rglob("*") if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES
               and not f.name.startswith("."))

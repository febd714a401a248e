"""The data stages as plain functions: ``ingest`` reads the source, ``split`` draws the indices.

Kedro's nodes call these; tuning, k-fold training and tests call them directly, without Kedro.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from deeppipe.data.sources import Samples, load_source
from deeppipe.data.storage import describe

if TYPE_CHECKING:
    from deeppipe.spec.schema import ExperimentSpec

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Split:
    """Index arrays into the ingested samples: train / val / test, and k-fold validation folds."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    folds: tuple[np.ndarray, ...] = field(default_factory=tuple)

    @property
    def evaluation(self) -> np.ndarray:
        """The indices a model is scored on: the test split, or the validation split without one."""
        return self.test if len(self.test) else self.val

    def to_arrays(self) -> dict[str, np.ndarray]:
        out = {"train": self.train, "val": self.val, "test": self.test}
        out.update({f"fold_{k}": f for k, f in enumerate(self.folds)})
        return out

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> Split:
        folds = tuple(arrays[f"fold_{k}"] for k in range(sum(1 for key in arrays if key.startswith("fold_"))))
        return cls(np.asarray(arrays["train"]), np.asarray(arrays["val"]), np.asarray(arrays["test"]), folds)


def ingest(spec: ExperimentSpec) -> Samples:
    """Read ``data.source`` into arrays (raw inputs, targets, task)."""
    d = spec.data
    t0 = time.perf_counter()
    samples = streamed(spec) if streams(spec) else load_source(d.source, on_error=d.on_error, limit=d.limit)
    if d.resize is not None:  # data.resize: e.g. to the input size of a pretrained network
        samples = resized(samples, d.resize)
    if d.task == "reconstruction":
        samples = as_reconstruction(samples)
    what = f"{samples.task.num_classes} classes" if samples.task.is_classification else samples.task.kind
    log.info("ingested %d samples of shape %s (%s, %s; %s) in %.2fs", len(samples.x), samples.sample_shape,
             samples.task.kind, what, describe(samples.x), time.perf_counter() - t0)
    return samples


def streams(spec: ExperimentSpec) -> bool:
    """Whether ``data.stream`` (true, or auto above ``data.memory_budget``) streams this source."""
    from deeppipe.data.sources import peek
    from deeppipe.data.stream import should_stream

    d = spec.data
    if d.stream is False or d.source.type != "image_folder":
        return False
    if d.stream is True:
        return True
    info = peek(d.source, on_error=d.on_error)  # folder names and file counts: no image is read
    n = info.num_samples if d.limit is None or info.num_samples is None else min(info.num_samples, d.limit)
    return should_stream(d, n, info.sample_shape)


def streamed(spec: ExperimentSpec) -> Samples:
    """The image folder listed, not decoded: its images are read while training (``data.stream``)."""
    from deeppipe.data.sources import read_key
    from deeppipe.data.sources.images import list_folder
    from deeppipe.data.storage import rows
    from deeppipe.data.stream import StreamedImages

    d = spec.data
    samples = list_folder(d.source, d.on_error, lambda files: StreamedImages(
        files, tuple(d.source.size), d.source.channels, stats_sample=d.stream_stats, seed=spec.seed))
    samples.meta["read_as"] = read_key(d.source, d.on_error, d.limit)
    if d.limit is not None and d.limit < len(samples.x):  # the first N, as load_source keeps them
        n_train = len(samples.x) - samples.n_official_test
        keep_test = min(samples.n_official_test, max(1, d.limit // 5)) if samples.n_official_test else 0
        idx = np.concatenate([np.arange(min(n_train, d.limit - keep_test)), n_train + np.arange(keep_test)])
        samples = Samples(rows(samples.x, idx), samples.y[idx], samples.task, keep_test, samples.meta)
    log.info("data.stream: %d images stay in their files and are decoded while training", len(samples.x))
    return samples


def resized(samples: Samples, size: list[int]) -> Samples:
    """The images at ``data.resize``'s size (``data.resize``); ``meta["read_as"]`` records it."""
    from deeppipe.data.resize import resize_images, resized_shape

    resized_shape(tuple(samples.x.shape[1:]), size)
    meta = {**samples.meta, "read_as": f"{samples.meta.get('read_as')}+resize{size[0]}x{size[1]}"}
    return Samples(resize_images(samples.x, size), samples.y, samples.task, samples.n_official_test, meta)


def as_reconstruction(samples: Samples) -> Samples:
    """The inputs become the targets (the training engine reads them when the task is
    reconstruction); the source's labels stay in ``y`` and their task in ``meta["labels"]``."""
    from deeppipe.data.task import Task

    meta = {**samples.meta, "labels": samples.task.to_dict()}
    meta["read_as"] = f"{meta.get('read_as')}+reconstruction"  # what read_as(spec) expects
    return Samples(samples.x, samples.y, Task("reconstruction", 0), samples.n_official_test, meta)


def read_as(spec: ExperimentSpec) -> str:
    """What ``ingest`` records having read (``meta["read_as"]``): the Kedro hook checks a stored
    data set against the run's spec with it."""
    from deeppipe.data.sources import read_key

    d = spec.data
    key = read_key(d.source, d.on_error, d.limit)
    if d.resize is not None:
        key = f"{key}+resize{d.resize[0]}x{d.resize[1]}"
    return f"{key}+reconstruction" if d.task == "reconstruction" else key


def anomaly_rows(spec: ExperimentSpec, samples: Samples) -> np.ndarray:
    """Which samples belong to ``data.anomalies`` (the held-out classes)."""
    names = samples.meta.get("labels", {}).get("class_names") or []
    held = [names.index(a) for a in spec.data.anomalies if a in names]
    return np.isin(samples.y.astype(np.int64), held) if held else np.zeros(len(samples.y), dtype=bool)


def split_indices(spec: ExperimentSpec, samples: Samples) -> dict[str, np.ndarray]:
    """The split ``spec`` draws from ``samples``; the held-out anomaly classes move to the test part."""
    from deeppipe.data.split import make_split, time_gap

    s = spec.data.split
    out = make_split(samples.y, samples.task, val=s.val, test=s.test, stratify=s.stratify, seed=spec.seed,
                     n_official_test=samples.n_official_test, folds=s.folds, time_gap=time_gap(samples.meta))
    if spec.data.anomalies:
        outlier = anomaly_rows(spec, samples)
        moved = np.flatnonzero(outlier)
        out = {k: v[~outlier[v]] for k, v in out.items()}
        out["test"] = np.union1d(out["test"], moved)
    return out


def split(spec: ExperimentSpec, samples: Samples) -> Split:
    """Seeded (stratified) train/val/test indices, plus k-fold indices when asked; windows of a time
    series are cut by time instead (``data.split.time_split``)."""
    result = Split.from_arrays(split_indices(spec, samples))
    log.info("split: %d train, %d val, %d test", len(result.train), len(result.val), len(result.test))
    return result

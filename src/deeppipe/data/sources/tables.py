"""Tabular and array sources: scikit-learn's bundled sets, CSV files and NumPy ``.npz`` archives."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Literal

import numpy as np

from deeppipe.config import Strict
from deeppipe.data.sources.base import DataError, Reader, Samples, _classification_task
from deeppipe.data.task import Task
from deeppipe.errors import SpecError
from deeppipe.registry import SOURCES

log = logging.getLogger(__name__)

class SklearnSource(Strict):
    """A data set bundled inside the scikit-learn wheel (no download)."""

    type: Literal["sklearn"]
    name: Literal["digits", "iris", "wine", "breast_cancer", "diabetes"]


class CsvSource(Strict):
    """Feature columns and one target column; categorical targets become class indices."""

    type: Literal["csv"]
    path: str
    target: str
    features: list[str] | None = None  # None: every column except the target
    task: Literal["auto", "classification", "regression"] = "auto"


class NpzSource(Strict):
    """A NumPy ``.npz`` with an input array and a target array (and optionally an official test split)."""

    type: Literal["npz"]
    path: str
    x: str = "x"
    y: str = "y"
    x_test: str | None = None
    y_test: str | None = None
    task: Literal["auto", "classification", "regression"] = "auto"
    class_names: list[str] | None = None


# ------------------------------------------------------------------------------- sklearn
def _read_sklearn(src: Any) -> Samples:
    from sklearn import datasets

    loader = getattr(datasets, f"load_{src.name}")
    bunch = loader()
    if src.name == "digits":
        x = (bunch.images / 16.0).astype(np.float32)[:, None, :, :]
        return Samples(x, bunch.target.astype(np.int64), _classification_task([str(i) for i in range(10)]),
                       meta={"source": "sklearn:digits"})
    x = bunch.data.astype(np.float32)
    if src.name == "diabetes":
        return Samples(x, bunch.target.astype(np.float32), Task("regression", 1), meta={"source": "sklearn:diabetes",
                       "feature_names": list(bunch.feature_names)})
    names = [str(n) for n in bunch.target_names]
    y = bunch.target.astype(np.int64)
    return Samples(x, y, _classification_task(names), meta={"source": f"sklearn:{src.name}",
                   "feature_names": [str(f) for f in bunch.feature_names]})


# ----------------------------------------------------------------------------- csv / npz
def _targets(raw: np.ndarray, task: str, where: str) -> tuple[np.ndarray, Task, dict[str, Any]]:
    """Map a target column to class indices (mapping kept) or float regression values."""
    numeric = np.issubdtype(raw.dtype, np.number) or np.issubdtype(raw.dtype, np.bool_)
    if task == "auto":
        if not numeric:
            task = "classification"
        else:
            values = np.unique(raw[~np.isnan(raw.astype(float))])
            integral = np.all(np.equal(np.mod(values, 1), 0))
            task = "classification" if integral and len(values) <= 20 else "regression"
    if task == "regression":
        if not numeric:
            raise DataError("regression needs a numeric target", file=where, found=str(raw.dtype))
        return raw.astype(np.float32), Task("regression", 1 if raw.ndim == 1 else raw.shape[1]), {}
    classes = np.unique(raw)
    mapping = {str(c.item() if hasattr(c, "item") else c): i for i, c in enumerate(classes)}
    y = np.searchsorted(classes, raw).astype(np.int64)
    return y, _classification_task(list(mapping)), {"class_mapping": mapping}


def _read_csv(src: Any, on_error: str) -> Samples:
    import pandas as pd

    path = Path(src.path)
    bad_lines: list[list[str]] = []
    try:
        if on_error == "raise":
            df = pd.read_csv(path, on_bad_lines="error")
        else:  # the python engine hands each malformed line to us, so skipped lines are counted
            df = pd.read_csv(path, engine="python", on_bad_lines=lambda line: bad_lines.append(line) and None)
    except Exception as exc:
        raise DataError(f"cannot read CSV: {exc}", file=str(path),
                        expected="well-formed rows (or set data.on_error: skip)") from None
    if src.target not in df.columns:
        raise SpecError("target column not in the CSV", path="data.source.target", expected=list(df.columns),
                        found=src.target, candidates=list(df.columns))
    features = src.features or [c for c in df.columns if c != src.target]
    missing = [c for c in features if c not in df.columns]
    if missing:
        raise SpecError("feature column not in the CSV", path="data.source.features", found=missing[0],
                        candidates=list(df.columns))
    feats = df[features]
    bad = [c for c in features if not pd.api.types.is_numeric_dtype(feats[c])]
    if bad:
        raise DataError(f"feature column '{bad[0]}' is not numeric", file=str(path),
                        expected="numeric feature columns (encode categories first)", found=str(feats[bad[0]].dtype))
    rows = feats.isna().any(axis=1) | df[src.target].isna()
    skipped = int(rows.sum()) + len(bad_lines)
    if rows.any() and on_error == "raise":
        first = int(np.flatnonzero(rows.to_numpy())[0])
        raise DataError(f"{int(rows.sum())} row(s) with missing values (first: data row {first + 1})", file=str(path),
                        expected="complete rows (or set data.on_error: skip)")
    df = df[~rows]
    y, task, meta = _targets(df[src.target].to_numpy(), src.task, str(path))
    if skipped:
        log.warning("skipped %d CSV row(s) in %s: %d malformed, %d with missing values", skipped, path,
                    len(bad_lines), skipped - len(bad_lines))
    return Samples(df[features].to_numpy(np.float32), y, task,
                   meta={"source": f"csv:{path}", "feature_names": features, "skipped_rows": skipped, **meta})


def _read_npz(src: Any) -> Samples:
    path = Path(src.path)
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except Exception as exc:
        raise DataError(f"cannot read npz: {exc}", file=str(path)) from None
    for key, label in ((src.x, "data.source.x"), (src.y, "data.source.y")):
        if key not in arrays:
            raise SpecError("array not in the npz file", path=label, file=str(path), found=key,
                            candidates=list(arrays))
    x, y_raw = arrays[src.x], arrays[src.y]
    n_test = 0
    if src.x_test and src.y_test:
        x = np.concatenate([x, arrays[src.x_test]])
        y_raw = np.concatenate([y_raw, arrays[src.y_test]])
        n_test = len(arrays[src.y_test])
    if len(x) != len(y_raw):
        raise DataError("inputs and targets differ in length", file=str(path), expected=len(y_raw), found=len(x))
    x = x.astype(np.float32)
    if x.ndim == 4 and x.shape[-1] in (1, 3) and x.shape[1] not in (1, 3):
        x = x.transpose(0, 3, 1, 2)  # NHWC -> NCHW
    if x.ndim >= 3 and x.max() > 1.0:
        x = x / 255.0
    y, task, meta = _targets(y_raw, src.task, str(path))
    if src.class_names and task.is_classification:
        if len(src.class_names) != task.num_classes:
            raise SpecError(f"{len(src.class_names)} class names for {task.num_classes} classes in the data",
                            path="data.source.class_names", file=str(path),
                            expected=f"{task.num_classes} names, one per class", found=src.class_names)
        task = _classification_task(src.class_names)
    return Samples(x, y, task, n_official_test=n_test, meta={"source": f"npz:{path}", **meta})


@SOURCES.register("sklearn", config=SklearnSource)
class SklearnReader(Reader):
    """scikit-learn's bundled sets: digits (8x8 images), iris, wine, breast_cancer, diabetes."""

    @staticmethod
    def read(src: Any, on_error: str) -> Samples:
        return _read_sklearn(src)


@SOURCES.register("csv", config=CsvSource)
class CsvReader(Reader):
    """A table: numeric feature columns and one target column."""

    @staticmethod
    def read(src: Any, on_error: str) -> Samples:
        return _read_csv(src, on_error)


@SOURCES.register("npz", config=NpzSource)
class NpzReader(Reader):
    """NumPy arrays of inputs and targets (NHWC images are turned into NCHW)."""

    @staticmethod
    def read(src: Any, on_error: str) -> Samples:
        return _read_npz(src)

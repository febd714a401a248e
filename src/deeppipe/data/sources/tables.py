"""Tabular and array sources: scikit-learn's bundled sets, CSV files and NumPy ``.npz`` archives."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field, model_validator

from deeppipe.config import Strict
from deeppipe.data.sources.base import DataError, Reader, Samples, _classification_task, finite_rows
from deeppipe.data.storage import ImageArray
from deeppipe.data.task import Task
from deeppipe.errors import SpecError
from deeppipe.registry import SOURCES

log = logging.getLogger(__name__)

class SklearnSource(Strict):
    """A data set bundled inside the scikit-learn wheel (no download)."""

    type: Literal["sklearn"]
    name: Literal["digits", "iris", "wine", "breast_cancer", "diabetes"]
    as_sequence: bool = Field(False, description="digits only: each image as a sequence of its 8 rows (8 steps of "
                              "8 features), for recurrent networks")

    @model_validator(mode="after")
    def _digits_only(self) -> SklearnSource:
        if self.as_sequence and self.name != "digits":
            raise ValueError(f"as_sequence reads the digits' images row by row; {self.name} is a table")
        return self


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
    layout: Literal["auto", "image", "sequence", "table"] = Field(
        "auto", description="auto: 4-D arrays and uint8 arrays are images (scaled to [0, 1]), other 3-D arrays "
                            "are sequences (N, steps, features: never rescaled, standardised per feature), 2-D "
                            "arrays are tables")


# ------------------------------------------------------------------------------- sklearn
def _read_sklearn(src: Any) -> Samples:
    from sklearn import datasets

    loader = getattr(datasets, f"load_{src.name}")
    bunch = loader()
    if src.name == "digits":
        x = (bunch.images / 16.0).astype(np.float32)
        if src.as_sequence:  # (N, 8 steps, 8 features): the rows, top to bottom
            return Samples(x, bunch.target.astype(np.int64), _classification_task([str(i) for i in range(10)]),
                           meta={"source": "sklearn:digits", "layout": "sequence"})
        return Samples(x[:, None, :, :], bunch.target.astype(np.int64),
                       _classification_task([str(i) for i in range(10)]), meta={"source": "sklearn:digits"})
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
    if raw.ndim > 2 or (raw.ndim == 2 and (task == "classification" or not numeric or _one_hot(raw))):
        hint = " (one-hot rows? store the class index instead: y.argmax(1))" if raw.ndim == 2 else ""
        raise DataError(f"targets of shape {raw.shape[1:]} per sample{hint}", file=where,
                        expected="one class label per sample (1-D), or a 2-D array of numbers with task: regression",
                        found=f"shape {raw.shape}")
    if raw.ndim == 2 and task == "auto":
        task = "regression"  # several real-valued outputs per sample
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


def _one_hot(raw: np.ndarray) -> bool:
    """Rows of 0/1 with a single 1: class labels written as one-hot vectors."""
    values = np.unique(raw)
    return raw.shape[1] > 1 and bool(np.isin(values, (0, 1)).all()) and bool((raw.sum(axis=1) == 1).all())


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
    if src.target in features:
        raise SpecError("the target column is also listed as a feature: the network would be given the answer",
                        path="data.source.features", expected=f"feature columns other than '{src.target}'",
                        found=features)
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
    raw = df[src.target].to_numpy()
    keep = finite_rows(raw, on_error, str(path))  # 'inf' parses as a number, not as missing
    df, skipped = df[keep], skipped + int((~keep).sum())
    y, task, meta = _targets(df[src.target].to_numpy(), src.task, str(path))
    if skipped:
        log.warning("skipped %d CSV row(s) in %s: %d malformed, %d with missing values", skipped, path,
                    len(bad_lines), skipped - len(bad_lines))
    return Samples(df[features].to_numpy(np.float32), y, task,
                   meta={"source": f"csv:{path}", "feature_names": features, "skipped_rows": skipped, **meta})


def _npz_arrays(src: Any, path: Path) -> dict[str, np.ndarray]:
    """The arrays the section names, each checked: present, numeric, one row per sample."""
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except Exception as exc:
        raise DataError(f"cannot read npz: {exc}", file=str(path)) from None
    if bool(src.x_test) != bool(src.y_test):
        given, other = ("x_test", "y_test") if src.x_test else ("y_test", "x_test")
        raise SpecError(f"{given} is given without {other}: the official test split needs both",
                        path=f"data.source.{given}", file=str(path),
                        expected=f"data.source.{other} naming its array too (or neither)", found=getattr(src, given))
    names = {"x": src.x, "y": src.y, **({"x_test": src.x_test, "y_test": src.y_test} if src.x_test else {})}
    out = {}
    for role, key in names.items():
        if key not in arrays:
            raise SpecError("array not in the npz file", path=f"data.source.{role}", file=str(path), found=key,
                            candidates=list(arrays))
        a = arrays[key]
        kind = "inputs" if role.startswith("x") else "targets"
        if a.ndim == 0:
            raise DataError(f"array '{key}' is a single value, not one row per sample", file=str(path),
                            expected=f"{kind} with samples along the first axis", found=f"shape {a.shape}")
        if a.dtype.kind == "c":
            raise DataError(f"array '{key}' holds complex numbers: their imaginary part would be lost",
                            file=str(path), expected="real numbers (store the real and imaginary parts as two "
                            "channels or features)", found=str(a.dtype))
        if a.dtype.kind not in "biuf" and (kind == "inputs" or a.dtype.kind not in "US"):
            raise DataError(f"array '{key}' is not numeric", file=str(path),
                            expected=f"numeric {kind}" + ("" if kind == "inputs" else " or class names"),
                            found=str(a.dtype))
        out[role] = a
    if "x_test" in out:
        for role in ("x", "y"):
            a, t = out[role], out[f"{role}_test"]
            if a.shape[1:] != t.shape[1:] or (a.dtype.kind != t.dtype.kind and "U" in (a.dtype.kind, t.dtype.kind)):
                raise DataError(f"'{names[role + '_test']}' does not match '{names[role]}'", file=str(path),
                                expected=f"samples of shape {a.shape[1:]}", found=f"shape {t.shape[1:]}")
    return out


def _read_npz(src: Any, on_error: str) -> Samples:
    path = Path(src.path)
    arrays = _npz_arrays(src, path)
    x, y_raw = arrays["x"], arrays["y"]
    n_test = 0
    if "x_test" in arrays:
        n_test = len(arrays["y_test"])
        x = np.concatenate([x, arrays["x_test"]])
        y_raw = np.concatenate([y_raw, arrays["y_test"]])
    if len(x) != len(y_raw):
        raise DataError("inputs and targets differ in length", file=str(path), expected=len(y_raw), found=len(x))
    keep = finite_rows(y_raw, on_error, str(path))
    if not keep.all():
        n_test -= int((~keep[len(keep) - n_test:]).sum()) if n_test else 0
        x, y_raw = x[keep], y_raw[keep]
    layout = src.layout
    if layout == "auto":
        layout = "image" if x.ndim == 4 or (x.ndim == 3 and x.dtype == np.uint8) else (
            "sequence" if x.ndim == 3 else "table")
    pixels = layout == "image" and x.dtype == np.uint8 and bool(x.size) and x.max() > 1
    x = x if pixels else x.astype(np.float32)
    if layout == "image":
        if x.ndim == 4 and x.shape[-1] in (1, 3) and x.shape[1] not in (1, 3):
            x = x.transpose(0, 3, 1, 2)  # NHWC -> NCHW
        if pixels:  # 8-bit pixels stay bytes, seen as p / 255 (data.storage.ImageArray)
            x = ImageArray(np.ascontiguousarray(x))
        elif x.size and x.max() > 1.0:
            x = x / 255.0  # pixels stored wider than 8 bits; a sequence is never rescaled (it has no "255")
    extra = {"layout": "sequence"} if layout == "sequence" else {}
    y, task, meta = _targets(y_raw, src.task, str(path))
    if src.class_names and task.is_classification:
        if len(src.class_names) != task.num_classes:
            raise SpecError(f"{len(src.class_names)} class names for {task.num_classes} classes in the data",
                            path="data.source.class_names", file=str(path),
                            expected=f"{task.num_classes} names, one per class", found=src.class_names)
        task = _classification_task(src.class_names)
    return Samples(x, y, task, n_official_test=n_test, meta={"source": f"npz:{path}", **meta, **extra})


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
        return _read_npz(src, on_error)

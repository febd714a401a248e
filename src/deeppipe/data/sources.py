"""Readers for every ``data.source.type``: sklearn, idx, image_folder, csv, npz.

Each reader returns a RawData: float32 inputs (images (N, C, H, W) in [0, 1], tables (N, F)),
targets, the Task, and how many of the last samples form the source's official test split.
A file that cannot be read stops the run with its name, or is skipped and counted when the
spec says ``on_error: skip``; nothing is silently dropped.
"""

from __future__ import annotations

import gzip
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from deeppipe.data.task import Task
from deeppipe.errors import SpecError

log = logging.getLogger(__name__)

FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                   "Sneaker", "Bag", "Ankle boot")
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}


class DataError(SpecError):
    """Data that cannot be read: names the file and what was wrong with it."""


@dataclass
class RawData:
    x: np.ndarray
    y: np.ndarray
    task: Task
    n_official_test: int = 0
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def sample_shape(self) -> tuple[int, ...]:
        return tuple(int(d) for d in self.x.shape[1:])


@dataclass(frozen=True)
class SourceInfo:
    """What validation needs without reading the whole data set."""

    sample_shape: tuple[int, ...]
    task: Task


def _classification_task(class_names: list[str] | tuple[str, ...]) -> Task:
    names = tuple(str(c) for c in class_names)
    if len(names) == 2:
        return Task("binary", 1, names)
    return Task("multiclass", len(names), names)


# ------------------------------------------------------------------------------- sklearn
def _read_sklearn(src: Any) -> RawData:
    from sklearn import datasets

    loader = getattr(datasets, f"load_{src.name}")
    bunch = loader()
    if src.name == "digits":
        x = (bunch.images / 16.0).astype(np.float32)[:, None, :, :]
        return RawData(x, bunch.target.astype(np.int64), _classification_task([str(i) for i in range(10)]),
                       meta={"source": "sklearn:digits"})
    x = bunch.data.astype(np.float32)
    if src.name == "diabetes":
        return RawData(x, bunch.target.astype(np.float32), Task("regression", 1), meta={"source": "sklearn:diabetes",
                       "feature_names": list(bunch.feature_names)})
    names = [str(n) for n in bunch.target_names]
    y = bunch.target.astype(np.int64)
    return RawData(x, y, _classification_task(names), meta={"source": f"sklearn:{src.name}",
                   "feature_names": [str(f) for f in bunch.feature_names]})


# ----------------------------------------------------------------------------------- idx
_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_IDX_FILES = {
    "train_x": "train-images-idx3-ubyte",
    "train_y": "train-labels-idx1-ubyte",
    "test_x": "t10k-images-idx3-ubyte",
    "test_y": "t10k-labels-idx1-ubyte",
}


def _idx_file(root: Path, stem: str) -> Path | None:
    for cand in (root / f"{stem}.gz", root / stem, root / stem.replace("-idx", ".idx")):
        if cand.is_file():
            return cand
    return None


def read_idx(path: Path, header_only: bool = False) -> np.ndarray | tuple[int, ...]:
    """Read one IDX file (optionally gzipped); a wrong magic number or size names the file."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            head = f.read(4)
            if len(head) < 4 or head[0] != 0 or head[1] != 0 or head[2] not in _IDX_DTYPES:
                raise DataError("not an IDX file (bad magic number)", file=str(path),
                                expected="0x0000 + type byte + ndim", found=head.hex())
            ndim = head[3]
            dims = tuple(int.from_bytes(f.read(4), "big") for _ in range(ndim))
            if header_only:
                return dims
            dtype = np.dtype(_IDX_DTYPES[head[2]])
            data = f.read()
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise DataError(f"cannot read: {exc}", file=str(path)) from None
    expected = int(np.prod(dims)) * dtype.itemsize
    if len(data) != expected:
        raise DataError("truncated or corrupt IDX file", file=str(path),
                        expected=f"{expected} bytes of data for shape {dims}", found=f"{len(data)} bytes")
    return np.frombuffer(data, dtype=dtype).reshape(dims)


def _idx_paths(src: Any) -> dict[str, Path]:
    root = Path(src.path)
    paths: dict[str, Path] = {}
    for key, stem in _IDX_FILES.items():
        p = _idx_file(root, stem)
        if p is None and key.startswith("train"):
            raise DataError(f"missing IDX file {stem}[.gz]", file=str(root),
                            expected=f"{stem}.gz or {stem} in this folder",
                            found=sorted(x.name for x in root.iterdir()) if root.is_dir() else "no such folder")
        if p is not None:
            paths[key] = p
    return paths


def _idx_classes(src: Any, labels: np.ndarray) -> list[str]:
    if src.class_names:
        return list(src.class_names)
    n = int(labels.max()) + 1
    if "fashion" in str(src.path).lower() and n == 10:
        return list(FASHION_CLASSES)
    return [str(i) for i in range(n)]


def _read_idx_source(src: Any) -> RawData:
    paths = _idx_paths(src)
    xs = [read_idx(paths["train_x"])]
    ys = [read_idx(paths["train_y"])]
    n_test = 0
    if "test_x" in paths and "test_y" in paths:
        xs.append(read_idx(paths["test_x"]))
        ys.append(read_idx(paths["test_y"]))
        n_test = len(ys[-1])
    for xa, ya, key in zip(xs, ys, ("train", "test")):
        if len(xa) != len(ya):
            raise DataError(f"{key} images and labels differ in count", file=str(paths[f"{key}_x"]),
                            expected=f"{len(ya)} images", found=len(xa))
    x = np.concatenate(xs).astype(np.float32)
    if x.max() > 1.0:
        x /= 255.0
    x = x[:, None] if x.ndim == 3 else x
    y = np.concatenate(ys).astype(np.int64)
    classes = _idx_classes(src, y)
    if y.max() >= len(classes):
        raise DataError("label outside the declared classes", file=str(paths["train_y"]),
                        expected=f"labels 0..{len(classes) - 1}", found=int(y.max()))
    return RawData(x, y, _classification_task(classes), n_official_test=n_test,
                   meta={"source": f"idx:{src.path}"})


# -------------------------------------------------------------------------- image folder
def _class_dirs(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def _read_image(path: Path, size: tuple[int, int], channels: int) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        im = im.convert("L" if channels == 1 else "RGB").resize((size[1], size[0]), Image.BILINEAR)
        arr = np.asarray(im, dtype=np.float32) / 255.0
    return arr[None] if channels == 1 else arr.transpose(2, 0, 1)


def _read_folder(root: Path, classes: list[str], src: Any, on_error: str, skipped: list[str]) -> tuple[list, list]:
    xs, ys = [], []
    for label, name in enumerate(classes):
        folder = root / name
        if not folder.is_dir():
            continue
        for f in sorted(folder.rglob("*")):
            if not f.is_file() or f.suffix.lower() not in IMAGE_SUFFIXES:
                continue
            try:
                xs.append(_read_image(f, tuple(src.size), src.channels))
                ys.append(label)
            except Exception as exc:  # PIL raises many types for corrupt files
                if on_error == "raise":
                    raise DataError(f"cannot read image: {exc}", file=str(f),
                                    expected="a readable PNG/JPEG (or set data.on_error: skip)") from None
                skipped.append(str(f))
    return xs, ys


def _read_image_folder(src: Any, on_error: str) -> RawData:
    root = Path(src.path)
    has_official = (root / "train").is_dir() and (root / "test").is_dir()
    train_root = root / "train" if has_official else root
    classes = [p.name for p in _class_dirs(train_root)]
    if not classes:
        raise DataError("no class sub-folders", file=str(root), expected="one folder per class holding images")
    skipped: list[str] = []
    xs, ys = _read_folder(train_root, classes, src, on_error, skipped)
    n_test = 0
    if has_official:
        tx, ty = _read_folder(root / "test", classes, src, on_error, skipped)
        xs += tx
        ys += ty
        n_test = len(ty)
    if not xs:
        raise DataError("no readable images found", file=str(root), expected=f"files ending in {sorted(IMAGE_SUFFIXES)}")
    if skipped:
        log.warning("skipped %d unreadable image(s) under %s (data.on_error: skip), first: %s",
                    len(skipped), root, skipped[0])
    return RawData(np.stack(xs).astype(np.float32), np.asarray(ys, dtype=np.int64), _classification_task(classes),
                   n_official_test=n_test, meta={"source": f"image_folder:{root}", "skipped": skipped})


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


def _read_csv(src: Any, on_error: str) -> RawData:
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
    return RawData(df[features].to_numpy(np.float32), y, task,
                   meta={"source": f"csv:{path}", "feature_names": features, "skipped_rows": skipped, **meta})


def _read_npz(src: Any) -> RawData:
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
        task = _classification_task(src.class_names)
    return RawData(x, y, task, n_official_test=n_test, meta={"source": f"npz:{path}", **meta})


# --------------------------------------------------------------------------- public API
def load_source(src: Any, *, on_error: str = "raise", limit: int | None = None) -> RawData:
    """Read the whole source named by a validated ``data.source`` section."""
    kind = src.type
    if kind == "sklearn":
        data = _read_sklearn(src)
    elif kind == "idx":
        data = _read_idx_source(src)
    elif kind == "image_folder":
        data = _read_image_folder(src, on_error)
    elif kind == "csv":
        data = _read_csv(src, on_error)
    elif kind == "npz":
        data = _read_npz(src)
    else:  # the schema's discriminator makes this unreachable
        raise SpecError("unknown source type", path="data.source.type", found=kind)
    if not np.isfinite(data.x).all():
        raise DataError("inputs contain NaN or infinite values", file=str(getattr(src, "path", kind)))
    if limit is not None and limit < len(data.x):
        n_train = len(data.x) - data.n_official_test
        keep_test = min(data.n_official_test, max(1, limit // 5)) if data.n_official_test else 0
        keep_train = min(n_train, limit - keep_test)
        idx = np.concatenate([np.arange(keep_train), n_train + np.arange(keep_test)]).astype(int)
        data = RawData(data.x[idx], data.y[idx], data.task, keep_test, data.meta)
    return data


def check_source(src: Any, *, file: str | None = None) -> None:
    """Fail early (before any work) when a file-based source's path does not exist."""
    path = getattr(src, "path", None)
    if path is not None and not Path(path).exists():
        hint = " (run `make data` or `deeppipe data fashion-mnist`)" if "fashion" in str(path) else ""
        raise SpecError(f"data path does not exist{hint}", path="data.source.path", file=file,
                        expected="an existing file or folder", found=str(path))


def peek(src: Any) -> SourceInfo:
    """Sample shape and task, cheaply where the format allows (IDX headers), else by reading."""
    if src.type == "idx":
        paths = _idx_paths(src)
        dims = read_idx(paths["train_x"], header_only=True)
        labels = read_idx(paths["train_y"])
        shape = (1, *dims[1:]) if len(dims) == 3 else tuple(dims[1:])
        return SourceInfo(tuple(shape), _classification_task(_idx_classes(src, labels)))
    if src.type == "image_folder":  # the spec fixes the size; classes are the folder names: read no image
        root = Path(src.path)
        train_root = root / "train" if (root / "train").is_dir() and (root / "test").is_dir() else root
        classes = [p.name for p in _class_dirs(train_root)] if train_root.is_dir() else []
        if not classes:
            raise DataError("no class sub-folders", file=str(root), expected="one folder per class holding images")
        return SourceInfo((src.channels, *src.size), _classification_task(classes))
    data = load_source(src, on_error="skip", limit=None)
    return SourceInfo(data.sample_shape, data.task)

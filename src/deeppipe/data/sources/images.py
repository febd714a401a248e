"""Image sources: MNIST-format IDX files and folders of image files (one sub-folder per class).

A file that cannot be read stops the run with its name, or is skipped and counted when the
spec says ``on_error: skip``; nothing is silently dropped.
"""

from __future__ import annotations

import gzip
import logging
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import Field

from deeppipe.config import Strict
from deeppipe.data.sources.base import (
    IMAGE_SUFFIXES,
    DataError,
    Reader,
    Samples,
    SourceInfo,
    _classification_task,
    _count_images,
)
from deeppipe.registry import SOURCES

log = logging.getLogger(__name__)

FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                   "Sneaker", "Bag", "Ankle boot")


class IdxSource(Strict):
    """MNIST-format files (``train-images-idx3-ubyte[.gz]`` ...): MNIST, Fashion-MNIST, KMNIST."""

    type: Literal["idx"]
    path: str
    class_names: list[str] | None = None


class ImageFolderSource(Strict):
    """One sub-folder per class holding PNG/JPEG files of any size."""

    type: Literal["image_folder"]
    path: str
    size: tuple[Annotated[int, Field(gt=0, le=8192)], Annotated[int, Field(gt=0, le=8192)]] = (32, 32)
    channels: Literal[1, 3] = 3


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


def _read_idx_source(src: Any) -> Samples:
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
    return Samples(x, y, _classification_task(classes), n_official_test=n_test,
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


def _read_image_folder(src: Any, on_error: str) -> Samples:
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
    return Samples(np.stack(xs).astype(np.float32), np.asarray(ys, dtype=np.int64), _classification_task(classes),
                   n_official_test=n_test, meta={"source": f"image_folder:{root}", "skipped": skipped})


@SOURCES.register("idx", config=IdxSource)
class IdxReader(Reader):
    """MNIST-format IDX files; the t10k files are the official test split."""

    @staticmethod
    def read(src: Any, on_error: str) -> Samples:
        return _read_idx_source(src)

    @classmethod
    def peek(cls, src: Any) -> SourceInfo:  # the headers and the labels: no image is read
        paths = _idx_paths(src)
        dims = read_idx(paths["train_x"], header_only=True)
        labels = [read_idx(paths["train_y"])]
        n_test = 0
        if "test_x" in paths and "test_y" in paths:
            labels.append(read_idx(paths["test_y"]))
            n_test = len(labels[-1])
        y = np.concatenate(labels).astype(np.int64)
        shape = (1, *dims[1:]) if len(dims) == 3 else tuple(dims[1:])
        task = _classification_task(_idx_classes(src, y))
        counts = tuple(int(c) for c in np.bincount(y, minlength=task.num_classes)) if len(y) else None
        return SourceInfo(tuple(shape), task, len(y), n_test, counts)


@SOURCES.register("image_folder", config=ImageFolderSource)
class ImageFolderReader(Reader):
    """One sub-folder of images per class; train/ and test/ sub-folders are the official split."""

    @staticmethod
    def read(src: Any, on_error: str) -> Samples:
        return _read_image_folder(src, on_error)

    @classmethod
    def peek(cls, src: Any) -> SourceInfo:  # the spec fixes the size, the folders the classes
        root = Path(src.path)
        train_root = root / "train" if (root / "train").is_dir() and (root / "test").is_dir() else root
        classes = [p.name for p in _class_dirs(train_root)] if train_root.is_dir() else []
        if not classes:
            raise DataError("no class sub-folders", file=str(root), expected="one folder per class holding images")
        official = train_root != root
        counts = [_count_images(train_root / c) + (_count_images(root / "test" / c) if official else 0)
                  for c in classes]
        n_test = sum(_count_images(root / "test" / c) for c in classes) if official else 0
        return SourceInfo((src.channels, *src.size), _classification_task(classes), sum(counts), n_test,
                          tuple(counts))

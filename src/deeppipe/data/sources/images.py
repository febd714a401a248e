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
from deeppipe.data.sources.decode import read_image as _read_image
from deeppipe.data.storage import ImageArray, to_float
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
    """Read one IDX file (optionally gzipped); a wrong magic number or size names the file.

    An uncompressed file is memory-mapped (read-only): only the rows used are paged in. A gzipped
    one cannot be (gzip has no random access): it is decompressed into memory.
    """
    gz = path.suffix == ".gz"
    opener = gzip.open if gz else open
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
            data = f.read() if gz else None
            size = len(data) if data is not None else path.stat().st_size - 4 - 4 * ndim
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise DataError(f"cannot read: {exc}", file=str(path)) from None
    expected = int(np.prod(dims)) * dtype.itemsize
    if size != expected:
        raise DataError("truncated or corrupt IDX file", file=str(path),
                        expected=f"{expected} bytes of data for shape {dims}", found=f"{size} bytes")
    if data is None:
        if not expected:
            return np.zeros(dims, dtype=dtype)
        return np.memmap(path, dtype=dtype, mode="r", offset=4 + 4 * ndim, shape=dims)
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


def _valid_labels(src: Any, y: np.ndarray, where: Path, on_error: str) -> np.ndarray:
    """Which samples have a label the data set can mean: below ``class_names``' count, and with
    no unused class numbers below it (one corrupt byte, 200, would otherwise make a 201-class
    head). Refused (``on_error: raise``), or those samples dropped and counted (``skip``)."""
    if not len(y):
        return np.ones(0, dtype=bool)
    if src.class_names:
        limit, why = len(src.class_names), f"data.source.class_names lists {len(src.class_names)} classes"
    else:
        present = np.unique(y)
        gaps = np.setdiff1d(np.arange(int(present.max()) + 1), present)
        if not len(gaps) or y.min() < 0:
            return y >= 0
        limit = int(gaps[0])
        why = f"no sample has label {limit}, yet some have labels above it (a corrupt label?)"
    ok = (y >= 0) & (y < limit)
    if ok.all():
        return ok
    bad = np.flatnonzero(~ok)
    if on_error == "raise":
        raise DataError(f"{len(bad)} label(s) outside 0..{limit - 1}: {why}", file=str(where),
                        expected=f"labels 0..{limit - 1} (data.source.class_names if some classes have no "
                        "sample; data.on_error: skip drops those samples)",
                        found=f"label {int(y[bad[0]])} at index {int(bad[0])}")
    log.warning("dropped %d sample(s) of %s with labels outside 0..%d (data.on_error: skip)", len(bad), where,
                limit - 1)
    return ok


def _idx_labels(src: Any, paths: dict[str, Path], on_error: str) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The labels of each part (train, official test) and which of them are kept."""
    ys = [read_idx(paths["train_y"]).astype(np.int64)]
    if "test_x" in paths and "test_y" in paths:
        ys.append(read_idx(paths["test_y"]).astype(np.int64))
    keep = _valid_labels(src, np.concatenate(ys), paths["train_y"], on_error)
    cut = np.cumsum([len(y) for y in ys])[:-1]
    return ys, np.split(keep, cut)


def _read_idx_source(src: Any, on_error: str) -> Samples:
    paths = _idx_paths(src)
    ys, keeps = _idx_labels(src, paths, on_error)
    xs = [read_idx(paths["train_x"])] + ([read_idx(paths["test_x"])] if len(ys) > 1 else [])
    for xa, ya, key in zip(xs, ys, ("train", "test")):
        if len(xa) != len(ya):
            raise DataError(f"{key} images and labels differ in count", file=str(paths[f"{key}_x"]),
                            expected=f"{len(ya)} images", found=len(xa))
    n_test = int(keeps[1].sum()) if len(ys) > 1 else 0
    x = _idx_pixels(xs, keeps)
    y = np.concatenate([ya[k] for ya, k in zip(ys, keeps)])
    classes = _idx_classes(src, y) if len(y) else list(src.class_names or [])
    return Samples(x, y, _classification_task(classes), n_official_test=n_test,
                   meta={"source": f"idx:{src.path}"})


def _idx_pixels(xs: list[np.ndarray], keeps: list[np.ndarray]) -> Any:
    """The images of every part as one (N, 1, H, W) array. 8-bit images with values above 1 stay
    uint8 (an ImageArray: the float view is p / 255, as before); 0/1 masks and wider types become
    float32 as they are. The parts (train, t10k) are joined in memory: one memory map cannot span
    two files, but one byte per pixel is what the IDX files hold anyway."""
    if all(xa.dtype == np.uint8 for xa in xs):
        raw = xs[0] if len(xs) == 1 and keeps[0].all() else np.concatenate([xa[k] for xa, k in zip(xs, keeps)])
        raw = raw[:, None] if raw.ndim == 3 else raw
        if raw.size and raw.max() > 1:
            return ImageArray(raw)
        return raw.astype(np.float32)
    x = np.concatenate([xa[k] for xa, k in zip(xs, keeps)]).astype(np.float32)
    if x.size and x.max() > 1.0:
        x /= 255.0
    return x[:, None] if x.ndim == 3 else x


# -------------------------------------------------------------------------- image folder
def _ignored(p: Path) -> bool:
    """Hidden entries and archivers' metadata (``.DS_Store``, ``._x.png``, ``__MACOSX/``) are no data."""
    return p.name.startswith((".", "__"))


def _class_dirs(root: Path, on_error: str = "raise") -> list[Path]:
    """The class folders under ``root``; one holding no image is refused (it would be a class no
    sample has) or, with ``on_error: skip``, left out with a warning."""
    dirs = sorted(p for p in root.iterdir() if p.is_dir() and not _ignored(p))
    empty = [p for p in dirs if not _count_images(p)]
    if empty and on_error == "raise":
        raise DataError(f"class folder '{empty[0].name}' holds no images: it would be a class no sample has",
                        file=str(empty[0]), expected="image files in every class folder (or data.on_error: skip "
                        "to leave empty folders out)", found=f"{len(empty)} empty folder(s)")
    if empty:
        log.warning("left out %d class folder(s) without images under %s: %s", len(empty), root,
                    ", ".join(p.name for p in empty))
    return [p for p in dirs if p not in empty]


def _test_only_classes(root: Path, classes: list[str], on_error: str) -> None:
    """A class folder under test/ with no match under train/ would be dropped uncounted."""
    extra = [p for p in _class_dirs(root / "test", "skip") if p.name not in classes]
    if not extra:
        return
    n = sum(_count_images(p) for p in extra)
    if on_error == "raise":
        raise DataError(f"class '{extra[0].name}' is only in test/ ({n} image(s)): the model could never "
                        "predict it", file=str(extra[0]), expected=f"the classes of train/: {classes} (or "
                        "data.on_error: skip to drop those images)", found=[p.name for p in extra])
    log.warning("dropped %d test image(s) of class(es) not in train/: %s (data.on_error: skip)", n,
                ", ".join(p.name for p in extra))


def _decode_all(files: list[Path], src: Any, on_error: str, skipped: list[str]) -> tuple[Any, np.ndarray]:
    """Every listed image decoded straight into one preallocated array (a list of decoded images
    and their stacked copy would hold the pixels twice): an ImageArray when every image is 8-bit,
    float32 in [0, 1] once one is wider (16-bit values fit no byte). Also which files were read."""
    out = np.empty((len(files), src.channels, *src.size), np.uint8)
    keep = np.ones(len(files), dtype=bool)
    for i, f in enumerate(files):
        try:
            im = _read_image(f, tuple(src.size), src.channels)
        except Exception as exc:  # PIL raises many types for corrupt files
            if on_error == "raise":
                raise DataError(f"cannot read image: {exc}", file=str(f),
                                expected="a readable PNG/JPEG (or set data.on_error: skip)") from None
            skipped.append(str(f))
            keep[i] = False
            continue
        if im.dtype != np.uint8 and out.dtype == np.uint8:
            out = to_float(out)
        out[i] = to_float(im) if im.dtype == np.uint8 and out.dtype != np.uint8 else im
    out = out if keep.all() else out[keep]
    return (ImageArray(out) if out.dtype == np.uint8 else out), keep


_SIGNATURES = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF87a", b"GIF89a", b"BM", b"II*\x00", b"MM\x00*")


def _sniff(path: Path, size: tuple[int, int], channels: int) -> str:
    """What a streamed folder checks at ingest: the file starts as an image format does (its
    first bytes; opening each with PIL would cost a third of decoding it). A file that passes and
    still fails to decode stops training naming it: a streamed run cannot skip it any more."""
    with open(path, "rb") as f:
        head = f.read(12)
    if not (head.startswith(_SIGNATURES) or (head[:4] == b"RIFF" and head[8:12] == b"WEBP")):
        raise ValueError(f"not a PNG/JPEG/GIF/BMP/TIFF/WebP file (starts with {head[:8]!r})")
    return str(path)


def _listed(path: Path, size: tuple[int, int], channels: int) -> Path:
    return path  # decoded afterwards, into one array (_decode_all)


def _read_folder(root: Path, classes: list[str], src: Any, on_error: str, skipped: list[str],
                 read: Any = _listed) -> tuple[list, list]:
    """Each image file's ``read`` (its path, or a checked name) and its label, class by class."""
    xs, ys = [], []
    for label, name in enumerate(classes):
        folder = root / name
        if not folder.is_dir():
            continue
        for f in sorted(folder.rglob("*")):
            if not f.is_file() or f.suffix.lower() not in IMAGE_SUFFIXES or _ignored(f):
                continue
            try:
                xs.append(read(f, tuple(src.size), src.channels))
                ys.append(label)
            except Exception as exc:  # PIL raises many types for corrupt files
                if on_error == "raise":
                    raise DataError(f"cannot read image: {exc}", file=str(f),
                                    expected="a readable PNG/JPEG (or set data.on_error: skip)") from None
                skipped.append(str(f))
    return xs, ys


def list_folder(src: Any, on_error: str, stream: Any = None) -> Samples:
    """The folder's images decoded (``stream`` None), or only listed and their first bytes checked,
    ``stream(files)`` then holding the inputs (``data.stream``: decoded while training)."""
    root = Path(src.path)
    has_official = (root / "train").is_dir() and (root / "test").is_dir()
    train_root = root / "train" if has_official else root
    classes = [p.name for p in _class_dirs(train_root, on_error)]
    if not classes:
        raise DataError("no class sub-folders", file=str(root), expected="one folder per class holding images")
    if has_official:
        _test_only_classes(root, classes, on_error)
    skipped: list[str] = []
    read = _listed if stream is None else _sniff
    xs, ys = _read_folder(train_root, classes, src, on_error, skipped, read)
    n_test = 0
    if has_official:
        tx, ty = _read_folder(root / "test", classes, src, on_error, skipped, read)
        xs += tx
        ys += ty
        n_test = len(ty)
    y = np.asarray(ys, dtype=np.int64)
    if stream is None:
        x, keep = _decode_all(xs, src, on_error, skipped)
        n_test, y = (int(keep[len(keep) - n_test:].sum()) if n_test else 0), y[keep]
    else:
        x = stream(xs)
    if not len(y):
        raise DataError("no readable images found", file=str(root), expected=f"files ending in {sorted(IMAGE_SUFFIXES)}")
    if skipped:
        log.warning("skipped %d unreadable image(s) under %s (data.on_error: skip), first: %s",
                    len(skipped), root, skipped[0])
    return Samples(x, y, _classification_task(classes), n_official_test=n_test,
                   meta={"source": f"image_folder:{root}", "skipped": skipped})


@SOURCES.register("idx", config=IdxSource)
class IdxReader(Reader):
    """MNIST-format IDX files; the t10k files are the official test split."""

    read = staticmethod(_read_idx_source)

    @classmethod
    def peek(cls, src: Any, on_error: str = "raise") -> SourceInfo:  # the headers and the labels: no image is read
        paths = _idx_paths(src)
        dims = read_idx(paths["train_x"], header_only=True)
        ys, keeps = _idx_labels(src, paths, on_error)
        n_test = int(keeps[1].sum()) if len(ys) > 1 else 0
        y = np.concatenate([ya[k] for ya, k in zip(ys, keeps)])
        shape = (1, *dims[1:]) if len(dims) == 3 else tuple(dims[1:])
        task = _classification_task(_idx_classes(src, y) if len(y) else list(src.class_names or []))
        counts = tuple(int(c) for c in np.bincount(y, minlength=task.num_classes)) if len(y) else None
        return SourceInfo(tuple(shape), task, len(y), n_test, counts)


@SOURCES.register("image_folder", config=ImageFolderSource)
class ImageFolderReader(Reader):
    """One sub-folder of images per class; train/ and test/ sub-folders are the official split."""

    read = staticmethod(list_folder)

    @staticmethod
    def restore(arrays: dict[str, np.ndarray]) -> Any:  # a streamed folder's stored file list
        from deeppipe.data.stream import StreamedImages

        return StreamedImages.from_arrays(arrays)

    @classmethod
    def peek(cls, src: Any, on_error: str = "raise") -> SourceInfo:  # the spec fixes the size, the folders the classes
        root = Path(src.path)
        train_root = root / "train" if (root / "train").is_dir() and (root / "test").is_dir() else root
        classes = [p.name for p in _class_dirs(train_root, on_error)] if train_root.is_dir() else []
        if not classes:
            raise DataError("no class sub-folders", file=str(root), expected="one folder per class holding images")
        official = train_root != root
        if official:
            _test_only_classes(root, classes, on_error)
        counts = [_count_images(train_root / c) + (_count_images(root / "test" / c) if official else 0)
                  for c in classes]
        n_test = sum(_count_images(root / "test" / c) for c in classes) if official else 0
        return SourceInfo((src.channels, *src.size), _classification_task(classes), sum(counts), n_test,
                          tuple(counts))

"""Readers for every source type, on real or generated files; corrupt input is never silent."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from deeppipe.data.sources import DataError, load_source, peek, read_idx
from deeppipe.data.split import make_split
from deeppipe.data.task import Task
from deeppipe.errors import SpecError
from deeppipe.data.sources.images import IdxSource, ImageFolderSource
from deeppipe.data.sources.tables import CsvSource, NpzSource, SklearnSource

FASHION = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "fashion-mnist"


@pytest.mark.parametrize(("name", "shape", "kind", "n"), [
    ("digits", (1, 8, 8), "multiclass", 1797), ("iris", (4,), "multiclass", 150),
    ("wine", (13,), "multiclass", 178), ("breast_cancer", (30,), "binary", 569),
    ("diabetes", (10,), "regression", 442)])
def test_sklearn_sets(name: str, shape: tuple, kind: str, n: int) -> None:
    d = load_source(SklearnSource(type="sklearn", name=name))
    assert d.sample_shape == shape and d.task.kind == kind and len(d.x) == n
    assert d.x.dtype == np.float32
    if name == "digits":
        assert d.x.min() == 0.0 and d.x.max() == 1.0


def _write_idx(path: Path, arr: np.ndarray, gz: bool = True) -> None:
    header = bytes([0, 0, 0x08, arr.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in arr.shape)
    data = header + arr.astype(np.uint8).tobytes()
    if gz:
        with gzip.open(path, "wb") as f:
            f.write(data)
    else:
        path.write_bytes(data)


@pytest.mark.skipif(not FASHION.exists(), reason="shared Fashion-MNIST not present")
def test_idx_reads_real_fashion_mnist_with_official_test_split() -> None:
    d = load_source(IdxSource(type="idx", path=str(FASHION)))
    assert len(d.x) == 70_000 and d.n_official_test == 10_000
    assert d.sample_shape == (1, 28, 28) and d.task.num_outputs == 10
    assert d.task.class_names[0] == "T-shirt/top"
    assert np.bincount(d.y[-10_000:]).tolist() == [1000] * 10
    info = peek(IdxSource(type="idx", path=str(FASHION)))
    assert info.sample_shape == (1, 28, 28)


def test_idx_uncompressed_and_corrupt(tmp_path: Path) -> None:
    x = np.random.default_rng(0).integers(0, 255, (20, 6, 6))
    _write_idx(tmp_path / "train-images-idx3-ubyte", x, gz=False)
    _write_idx(tmp_path / "train-labels-idx1-ubyte", np.arange(20) % 3, gz=False)
    d = load_source(IdxSource(type="idx", path=str(tmp_path)))
    assert d.sample_shape == (1, 6, 6) and d.n_official_test == 0 and d.task.num_outputs == 3
    np.testing.assert_allclose(d.x[:, 0] * 255, x, atol=1e-4)
    raw = (tmp_path / "train-images-idx3-ubyte").read_bytes()
    (tmp_path / "train-images-idx3-ubyte").write_bytes(raw[:-7])  # truncated
    with pytest.raises(DataError) as info:
        load_source(IdxSource(type="idx", path=str(tmp_path)))
    assert "train-images-idx3-ubyte" in str(info.value) and "truncated" in str(info.value)
    (tmp_path / "train-images-idx3-ubyte").write_bytes(b"\x12\x34" + raw[2:])
    with pytest.raises(DataError, match="magic"):
        read_idx(tmp_path / "train-images-idx3-ubyte")


def _png(path: Path, color: tuple, size: tuple = (10, 14)) -> None:
    from PIL import Image

    Image.new("RGB", size, color).save(path)


def test_image_folder_resizes_converts_and_skips_or_raises(tmp_path: Path) -> None:
    for cls, color in (("cat", (255, 0, 0)), ("dog", (0, 0, 255)), ("eel", (0, 255, 0))):
        (tmp_path / cls).mkdir()
        for i in range(3):
            _png(tmp_path / cls / f"{i}.png", color, size=(10 + i, 14))
    (tmp_path / "dog" / "broken.png").write_bytes(b"not a png")
    src = ImageFolderSource(type="image_folder", path=str(tmp_path), size=(8, 8), channels=3)
    with pytest.raises(DataError) as info:
        load_source(src)
    assert "broken.png" in str(info.value)
    d = load_source(src, on_error="skip")
    assert d.x.shape == (9, 3, 8, 8) and d.meta["skipped"][0].endswith("broken.png")
    assert d.task.class_names == ("cat", "dog", "eel")
    red = d.x[d.y == 0]
    assert np.allclose(red[:, 0], 1.0) and np.allclose(red[:, 1:], 0.0)
    gray = load_source(ImageFolderSource(type="image_folder", path=str(tmp_path), size=(5, 6), channels=1),
                       on_error="skip")
    assert gray.x.shape == (9, 1, 5, 6)


def test_csv_categorical_target_mapping_and_missing_rows(tmp_path: Path) -> None:
    f = tmp_path / "t.csv"
    pd.DataFrame({"a": [1.0, 2, 3, 4, None], "b": [0, 1, 0, 1, 1], "label": ["x", "y", "z", "x", "y"]}).to_csv(f, index=False)
    src = CsvSource(type="csv", path=str(f), target="label")
    with pytest.raises(DataError, match="missing values"):
        load_source(src)
    d = load_source(src, on_error="skip")
    assert d.x.shape == (4, 2) and d.meta["class_mapping"] == {"x": 0, "y": 1, "z": 2}
    assert d.y.tolist() == [0, 1, 2, 0] and d.meta["skipped_rows"] == 1
    with pytest.raises(SpecError) as info:
        load_source(CsvSource(type="csv", path=str(f), target="lable"))
    assert info.value.suggestion == "label"


def test_csv_malformed_lines_stop_the_run_or_are_counted(tmp_path: Path) -> None:
    f = tmp_path / "t.csv"
    f.write_text("a,b,label\n1,2,x\n3,4,y,EXTRA\n5,6,x\n7,8,y\n")
    with pytest.raises(DataError) as info:
        load_source(CsvSource(type="csv", path=str(f), target="label"))
    assert str(f) in str(info.value)
    d = load_source(CsvSource(type="csv", path=str(f), target="label"), on_error="skip")
    assert len(d.x) == 3 and d.meta["skipped_rows"] == 1


def test_image_folder_peek_reads_no_image(tmp_path: Path) -> None:
    for cls in ("a", "b", "c"):
        (tmp_path / cls).mkdir()
        (tmp_path / cls / "0.png").write_bytes(b"not even an image")
    info = peek(ImageFolderSource(type="image_folder", path=str(tmp_path), size=(12, 10), channels=1))
    assert info.sample_shape == (1, 12, 10) and info.task.num_outputs == 3


def test_npz_nhwc_to_nchw_and_regression(tmp_path: Path) -> None:
    f = tmp_path / "d.npz"
    rng = np.random.default_rng(1)
    np.savez(f, images=rng.integers(0, 255, (10, 5, 5, 3)).astype(np.uint8), target=rng.normal(size=10))
    d = load_source(NpzSource(type="npz", path=str(f), x="images", y="target"))
    assert d.x.shape == (10, 3, 5, 5) and d.x.max() <= 1.0 and d.task.kind == "regression"
    with pytest.raises(SpecError) as info:
        load_source(NpzSource(type="npz", path=str(f), x="image", y="target"))
    assert info.value.suggestion == "images"


def test_split_is_seeded_stratified_and_disjoint() -> None:
    y = np.repeat(np.arange(4), [100, 50, 30, 20])
    task = Task("multiclass", 4, ("a", "b", "c", "d"))
    s = make_split(y, task, val=0.1, test=0.2, stratify=True, seed=3, folds=5)
    again = make_split(y, task, val=0.1, test=0.2, stratify=True, seed=3, folds=5)
    assert all(np.array_equal(s[k], again[k]) for k in s)
    assert len(s["test"]) == 40 and len(s["val"]) == 20 and len(s["train"]) == 140
    assert set(s["train"]) | set(s["val"]) | set(s["test"]) == set(range(200))
    assert not set(s["train"]) & set(s["test"])
    assert np.bincount(y[s["test"]]).tolist() == [20, 10, 6, 4]  # class shares kept
    folds = np.concatenate([s[f"fold_{k}"] for k in range(5)])
    assert sorted(folds.tolist()) == sorted(np.concatenate([s["train"], s["val"]]).tolist())
    other = make_split(y, task, val=0.1, test=0.2, stratify=True, seed=4)
    assert not np.array_equal(s["test"], other["test"])


def test_official_test_split() -> None:
    y = np.arange(100) % 5
    s = make_split(y, Task("multiclass", 5, tuple("abcde")), val=0.1, test="official", stratify=True, seed=0,
                   n_official_test=30)
    assert s["test"].tolist() == list(range(70, 100)) and len(s["val"]) == 7
    with pytest.raises(SpecError):
        make_split(y, Task("multiclass", 5, tuple("abcde")), val=0.1, test="official", stratify=True, seed=0)

"""Issue 15, item 4: data read wrongly without a word. Each hostile data set is either refused at
validation (naming the file and what is wrong) or read correctly; with ``data.on_error: skip`` the
bad samples are dropped and counted, never silently kept."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from deeppipe.data.sources import load_source
from deeppipe.errors import SpecError
from deeppipe.spec.loader import load_spec
from deeppipe.spec.overrides import parse_params

from .conftest import write_spec

RNG = np.random.default_rng(0)
MLP = {"layers": [{"Flatten": {}}, {"Linear": {"out_features": 8}}, {"ReLU": {}}, {"Linear": {"out_features": "auto"}}]}


def _spec(source: dict, **data) -> dict:
    return {"seed": 1, "data": {"source": source, "split": {"val": 0.2, "test": 0.2}, **data}, "model": MLP,
            "train": {"epochs": 1, "batch_size": 8, "progress": False}}


def _png(path: Path, arr: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)


def _folder(root: Path, classes: dict[str, int], value: int = 128, dtype=np.uint8) -> Path:
    for name, count in classes.items():
        for i in range(count):
            _png(root / name / f"{i}.png", np.full((8, 8), value, dtype=dtype))
    return root


def _idx(path: Path, arr: np.ndarray) -> None:
    path.write_bytes(bytes([0, 0, 8, arr.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in arr.shape)
                     + arr.astype(np.uint8).tobytes())


X = RNG.normal(size=(60, 4)).astype(np.float32)
Y = (X[:, 0] > 0).astype(np.int64)


def nan_label(tmp: Path) -> dict:
    y = Y.astype(float)
    y[3] = np.nan
    np.savez(tmp / "d.npz", x=X, y=y)
    return {"type": "npz", "path": str(tmp / "d.npz")}


def inf_target(tmp: Path) -> dict:
    y = X[:, 1].copy()
    y[5] = np.inf
    np.savez(tmp / "d.npz", x=X, y=y)
    return {"type": "npz", "path": str(tmp / "d.npz"), "task": "regression"}


def idx_label_200(tmp: Path) -> dict:
    labels = np.arange(100) % 10
    labels[7] = 200
    _idx(tmp / "train-images-idx3-ubyte", RNG.integers(0, 255, (100, 8, 8)))
    _idx(tmp / "train-labels-idx1-ubyte", labels)
    return {"type": "idx", "path": str(tmp)}


def csv_target_feature(tmp: Path) -> dict:
    df = pd.DataFrame(X, columns=list("abcd"))
    df["t"] = Y
    df.to_csv(tmp / "t.csv", index=False)
    return {"type": "csv", "path": str(tmp / "t.csv"), "target": "t", "features": ["a", "b", "t"]}


def empty_class_folder(tmp: Path) -> dict:
    root = _folder(tmp / "imgs", {"a": 6, "b": 6})
    (root / "empty").mkdir()
    return {"type": "image_folder", "path": str(root), "size": [8, 8], "channels": 1}


def class_only_in_test(tmp: Path) -> dict:
    _folder(tmp / "imgs" / "train", {"a": 8, "b": 8})
    _folder(tmp / "imgs" / "test", {"a": 3, "b": 3, "c": 4})
    return {"type": "image_folder", "path": str(tmp / "imgs"), "size": [8, 8], "channels": 1}


def complex_inputs(tmp: Path) -> dict:
    np.savez(tmp / "d.npz", x=(X + 1j * X).astype(np.complex64), y=Y)
    return {"type": "npz", "path": str(tmp / "d.npz")}


def x_test_without_y_test(tmp: Path) -> dict:
    np.savez(tmp / "d.npz", x=X, y=Y, x_test=X[:10])
    return {"type": "npz", "path": str(tmp / "d.npz"), "x_test": "x_test"}


def single_class(tmp: Path) -> dict:
    np.savez(tmp / "d.npz", x=X, y=np.zeros(60, np.int64))
    return {"type": "npz", "path": str(tmp / "d.npz"), "task": "classification"}


# (fixture, what validation must name, a word of the message)
REFUSED: list[tuple[Callable[[Path], dict], str, str]] = [
    (nan_label, "d.npz", "NaN"),
    (inf_target, "d.npz", "infinite"),
    (idx_label_200, "train-labels-idx1-ubyte", "corrupt label"),
    (csv_target_feature, "data.source.features", "target"),
    (empty_class_folder, "empty", "no images"),
    (class_only_in_test, "test/c", "only in test"),
    (complex_inputs, "d.npz", "complex"),
    (x_test_without_y_test, "data.source.x_test", "y_test"),
    (single_class, "data.source", "single class"),
]


@pytest.mark.parametrize(("make", "where", "word"), REFUSED, ids=[r[0].__name__ for r in REFUSED])
def test_hostile_data_is_refused_at_validation(tmp_path: Path, make, where: str, word: str) -> None:
    f = write_spec(tmp_path, _spec(make(tmp_path)))
    with pytest.raises(SpecError) as info:
        load_spec(f)
    text = str(info.value)
    assert where in text and word.lower() in text.lower(), text
    assert info.value.file, "a refusal names the file it is about"


@pytest.mark.parametrize(("make", "kept", "classes"), [
    (nan_label, 59, 2), (inf_target, 59, None), (idx_label_200, 99, 10), (empty_class_folder, 12, 2),
    (class_only_in_test, 22, 2)], ids=["nan_label", "inf_target", "idx_label_200", "empty_folder", "test_only"])
def test_skip_drops_and_counts_bad_samples(tmp_path: Path, caplog, make, kept: int, classes: int | None) -> None:
    f = write_spec(tmp_path, _spec(make(tmp_path), on_error="skip"))
    rs = load_spec(f)  # validation and reading agree: skip is accepted
    samples = load_source(rs.spec.data.source, on_error="skip")
    assert len(samples.x) == kept
    if classes is not None:
        assert samples.task.num_classes == classes
    assert any(w in caplog.text for w in ("dropped", "left out")), caplog.text


def test_16_bit_pngs_keep_their_range(tmp_path: Path) -> None:
    root = tmp_path / "png16"
    _folder(root, {"dark": 4}, value=1000, dtype=np.uint16)
    _folder(root, {"bright": 4}, value=60000, dtype=np.uint16)
    assert Image.open(root / "dark" / "0.png").mode.startswith("I")
    rs = load_spec(write_spec(tmp_path, _spec({"type": "image_folder", "path": str(root), "size": [8, 8],
                                               "channels": 1})))
    s = load_source(rs.spec.data.source)
    means = {name: float(s.x[s.y == i].mean()) for i, name in enumerate(s.task.class_names)}
    assert means["dark"] == pytest.approx(1000 / 65535, abs=1e-3)
    assert means["bright"] == pytest.approx(60000 / 65535, abs=1e-3)  # not clipped to 1.0 at 8 bits


def test_archive_metadata_and_hidden_files_are_not_classes(tmp_path: Path) -> None:
    root = _folder(tmp_path / "imgs", {"a": 5, "b": 5})
    _png(root / "__MACOSX" / "a" / "._0.png", np.zeros((8, 8), np.uint8))
    (root / "a" / "._1.png").write_bytes(b"\x00\x05\x16\x07 AppleDouble")  # a resource fork, not an image
    (root / ".DS_Store").write_bytes(b"junk")
    rs = load_spec(write_spec(tmp_path, _spec({"type": "image_folder", "path": str(root), "size": [8, 8],
                                               "channels": 1})))
    s = load_source(rs.spec.data.source)
    assert s.task.class_names == ("a", "b") and len(s.x) == 10


@pytest.mark.parametrize(("text", "word"), [
    ("data: {source: {type: sklearn, name: iris}}\ntrain: {epochs: true}\n", "boolean"),
    ("data: {source: {type: sklearn, name: iris}}\ntrain: {batch_size: yes}\n", "boolean"),
    ("data: {source: {type: sklearn, name: iris}}\ntrain: {optimizer: {name: adam, lr: on}}\n", "boolean"),
    ("data: {source: {type: sklearn, name: iris}}\ntrain: {epochs: 1}\ntrain: {epochs: 2}\n", "twice"),
], ids=["epochs_true", "batch_size_yes", "lr_on", "duplicate_train_section"])
def test_values_yaml_would_silently_change_are_refused(tmp_path: Path, text: str, word: str) -> None:
    f = write_spec(tmp_path, text + "model: {layers: [{Linear: {out_features: auto}}]}\n")
    with pytest.raises(SpecError) as info:
        load_spec(f)
    assert str(f) in str(info.value) and word in str(info.value)


def test_an_empty_key_in_params_is_refused() -> None:
    with pytest.raises(SpecError) as info:
        parse_params("train..epochs=3")
    assert "--params" in str(info.value)

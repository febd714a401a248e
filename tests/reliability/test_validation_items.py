"""Issue 15, items 5-8: specs that passed `deeppipe validate` and then failed, or that made validation
itself crash or hang. Each is refused at validation, with the file's name, within seconds.

Most of items 5 and 6 are cases of ``tests/spec/test_validation.py``'s REFUSED table (kept there,
next to validation); this file adds the ones that need data files or a clock, and checks that the
whole table is refused fast."""

from __future__ import annotations

import signal
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from deeppipe.errors import SpecError
from deeppipe.spec.loader import load_spec, validate
from tests.spec.test_validation import FILE, REFUSED

from .conftest import write_spec

SECONDS = 10  # "every spec validates within a few seconds" (2 loaded cores; typical: well under 1 s)
MLP = {"layers": [{"Flatten": {}}, {"Linear": {"out_features": 8}}, {"Linear": {"out_features": "auto"}}]}
X = np.random.default_rng(0).normal(size=(40, 4)).astype(np.float32)
Y = np.arange(40) % 3


@contextmanager
def deadline(seconds: float = SECONDS):
    """Fail (instead of hanging the suite) when the block runs longer than ``seconds``."""
    def _late(*_):
        raise TimeoutError(f"validation took more than {seconds} s")

    old = signal.signal(signal.SIGALRM, _late)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def _refused(f: Path, *words: str) -> str:
    with deadline(), pytest.raises(SpecError) as info:
        load_spec(f)
    text = str(info.value)
    assert "Traceback" not in text
    assert str(f) in text or (info.value.file and info.value.file != "<spec>"), text
    for w in words:
        assert w.lower() in text.lower(), text
    return text


def _npz_spec(tmp: Path, arrays: dict, **source) -> dict:
    np.savez(tmp / "d.npz", **arrays)
    return {"data": {"source": {"type": "npz", "path": str(tmp / "d.npz"), **source}}, "model": MLP,
            "train": {"epochs": 1, "progress": False}}


@pytest.mark.parametrize(("arrays", "source", "words"), [
    ({"x": np.float32(1.0), "y": Y}, {}, ("single value",)),                       # item 7
    ({"x": np.array(["a"] * 40), "y": Y}, {}, ("not numeric",)),                   # item 7
    ({"x": X, "y": Y}, {"x_test": "nope", "y_test": "y"}, ("data.source.x_test", "not in the npz")),  # item 7
    ({"x": X, "y": Y, "xt": X[:5, :3], "yt": Y[:5]}, {"x_test": "xt", "y_test": "yt"}, ("does not match",)),
    ({"x": X, "y": np.eye(2, dtype=np.int64)[np.arange(40) % 2]}, {}, ("one-hot",)),  # item 5: 2-D y
    ({"x": X, "y": Y}, {"class_names": ["a", "b"]}, ("class_names", "3 classes")),   # item 5
], ids=["scalar_x", "string_x", "missing_x_test", "x_test_shape", "2d_y", "fewer_class_names"])
def test_npz_shapes_and_keys_are_refused(tmp_path: Path, arrays: dict, source: dict, words: tuple) -> None:
    _refused(write_spec(tmp_path, _npz_spec(tmp_path, arrays, **source)), *words)


def test_idx_labels_beyond_class_names_are_refused_at_validation(tmp_path: Path) -> None:
    def idx(path: Path, arr: np.ndarray) -> None:
        path.write_bytes(bytes([0, 0, 8, arr.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in arr.shape)
                         + arr.astype(np.uint8).tobytes())

    idx(tmp_path / "train-images-idx3-ubyte", np.zeros((30, 6, 6)))
    idx(tmp_path / "train-labels-idx1-ubyte", np.arange(30) % 3)
    spec = {"data": {"source": {"type": "idx", "path": str(tmp_path), "class_names": ["a", "b"]}}, "model": MLP}
    _refused(write_spec(tmp_path, spec), "train-labels-idx1-ubyte", "class_names")


BOMB = "".join(f"        - &b{i} [*b{i - 1}, *b{i - 1}]\n" if i else "        - &b0 [1, 2]\n" for i in range(40))


@pytest.mark.parametrize(("text", "words"), [
    ("model: {layers: [{Linear: {out_features: 4}, repeat: 1000000000000}, {Linear: {out_features: auto}}]}\n",
     ("repeat", "at most")),                                                                  # item 8
    ("model:\n  layers:\n  - Linear:\n      out_features: 4\n      bias:\n" + BOMB
     + "  - Linear: {out_features: auto}\n", ("alias",)),                                      # item 8
    ("model: {layers: [{Linear: {out_features: .nan}}, {Linear: {out_features: auto}}]}\n",
     ("model.layers[0]",)),                                                                   # item 7
    ("x: " + "[" * 20000 + "]" * 20000 + "\n", ("nested",)),                                  # item 7
    ("seed: " + "9" * 5000 + "\n", ("not valid yaml",)),                                      # item 7
    ("a: &a [*a]\n", ("recursive",)),
    ("data: {limit: 1}\nmodel: {layers: [{Linear: {out_features: auto}}]}\n", ("data.limit",)),  # item 5
], ids=["repeat_1e12", "alias_bomb_in_layer_argument", "width_nan", "nesting_20000", "huge_integer",
        "recursive_alias", "limit_1"])
def test_hostile_specs_are_refused_within_seconds(tmp_path: Path, text: str, words: tuple) -> None:
    head = "data: {source: {type: sklearn, name: iris}}\ntrain: {epochs: 1, progress: false}\n"
    if text.startswith("data:"):  # a data section of its own: merge the source in
        text = text.replace("data: {", "data: {source: {type: sklearn, name: iris}, ")
        head = "train: {epochs: 1, progress: false}\n"
    _refused(write_spec(tmp_path, head + text), *words)


def test_every_refused_case_of_the_table_is_refused_fast() -> None:
    """The REFUSED table (tests/spec/test_validation.py) holds items 5 and 6; each is refused in seconds."""
    slow = []
    for raw, path, _ in REFUSED:
        t0 = time.perf_counter()
        with deadline(), pytest.raises(SpecError) as info:
            validate(raw, file=FILE)
        assert info.value.file == FILE and info.value.path.startswith(path), str(info.value)
        if time.perf_counter() - t0 > SECONDS / 2:
            slow.append(path)
    assert not slow, slow

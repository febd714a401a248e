"""Evaluation reads uint8 test images a batch at a time: the scores are those of the float32
copy, and no float32 copy of the whole split is ever made (a test set larger than memory is
evaluated the way it was trained)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from deeppipe.data.stage import ingest, split
from deeppipe.data.storage import ImageArray
from deeppipe.evaluation.predictor import predictor_for
from deeppipe.evaluation.stage import evaluate
from deeppipe.spec.loader import ResolvedSpec, validate
from deeppipe.training.stage import fit_experiment


def _write_idx(path: Path, arr: np.ndarray) -> None:
    header = bytes([0, 0, 0x08, arr.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in arr.shape)
    path.write_bytes(header + arr.astype(np.uint8).tobytes())


def _blobs(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """8x8 images with a bright 4x4 square in one of four quadrants (the label)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 4, n)
    x = rng.integers(0, 60, (n, 8, 8))
    for i, q in enumerate(y):
        r, c = divmod(int(q), 2)
        x[i, 4 * r:4 * r + 4, 4 * c:4 * c + 4] += 180
    return x.astype(np.uint8), y


def test_uint8_test_images_are_scored_batch_by_batch_without_a_float_copy(tmp_path, monkeypatch):
    for stem, n, seed in (("train", 160, 0), ("t10k", 3000, 1)):
        x, y = _blobs(n, seed)
        _write_idx(tmp_path / f"{stem}-images-idx3-ubyte", x)
        _write_idx(tmp_path / f"{stem}-labels-idx1-ubyte", y)
    raw = {"seed": 3, "data": {"source": {"type": "idx", "path": str(tmp_path)}, "split": {"val": 0.2, "test": "official"}},
           "model": {"layers": [{"Flatten": {}}, {"Linear": {"out_features": 4}}]},
           "train": {"epochs": 3, "batch_size": 32, "eval_batch_size": 256, "optimizer": {"lr": 0.01}, "progress": False},
           "evaluate": {"metrics": ["accuracy", "log_loss"]}}
    rs = ResolvedSpec("blobs", "pipelines/blobs.yml", validate(raw, check_model=False, check_data=False), raw)
    samples = ingest(rs.spec)
    assert isinstance(samples.x, ImageArray)
    parts = split(rs.spec, samples)
    trained = fit_experiment(rs, samples, parts)
    predictor = predictor_for(rs.spec, trained.artifact)
    floats = predictor.predict(np.asarray(samples.x)[parts.evaluation])  # the old path: a float32 copy

    widest = []
    real_getitem = ImageArray.__getitem__

    def getitem(self, key):
        out = real_getitem(self, key)
        widest.append(len(out) if out.ndim == 4 else 1)
        return out

    def whole(self, *a, **k):
        raise AssertionError(f"a float32 copy of {len(self)} images was made")

    monkeypatch.setattr(ImageArray, "__getitem__", getitem)
    monkeypatch.setattr(ImageArray, "__array__", whole)
    result = evaluate(rs, predictor, samples, parts, show=False)
    assert max(widest, default=0) <= 256  # saliency's few samples, never the split
    acc = float((floats.argmax(1) == samples.y[parts.evaluation]).mean())
    assert result.scalars["accuracy"] == pytest.approx(acc, abs=1e-12)
    assert acc > 0.9  # the quadrant is learnt

"""``data.stream``: an image folder decoded from its files by DataLoader workers while training, with
the in-memory run's split, batches, augmentation and model; what it cannot do is refused at validate."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from deeppipe.augment.apply import eval_view
from deeppipe.data.samples_file import SamplesFile
from deeppipe.data.sources import DataError
from deeppipe.data.stage import ingest, split
from deeppipe.data.storage import ImageArray
from deeppipe.data.stream import StreamedImages
from deeppipe.errors import SpecError
from deeppipe.evaluation.predictor import predictor_for
from deeppipe.spec.loader import ResolvedSpec, load_spec, validate
from deeppipe.training.stage import fit_experiment


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """train/<class>/*, test/<class>/*: three colour classes, PNG and JPEG."""
    root = tmp_path_factory.mktemp("folder")
    rng = np.random.default_rng(0)
    for part, n in (("train", 40), ("test", 10)):
        for c in range(3):
            (root / part / f"c{c}").mkdir(parents=True)
            for i in range(n):
                img = rng.integers(0, 120, (12, 12, 3))
                img[..., c] += 120
                Image.fromarray(img.astype(np.uint8)).save(root / part / f"c{c}" / f"{i}.{'jpg' if i % 2 else 'png'}")
    return root


def _spec(folder: Path, **data) -> dict:
    return {"seed": 3,
            "data": {"source": {"type": "image_folder", "path": str(folder), "size": [10, 10]},
                     "split": {"val": 0.2, "test": "official"}, **data},
            "augment": {"train": [{"HorizontalFlip": {"p": 0.5}}], "tta": [{"HorizontalFlip": {}}]},
            "model": {"layers": [{"Conv2d": {"out_channels": 4, "kernel_size": 3}}, {"ReLU": {}}, {"Flatten": {}},
                                 {"Linear": {"out_features": 3}}]},
            "train": {"epochs": 2, "batch_size": 16, "optimizer": {"name": "adam", "lr": 0.003}, "progress": False}}


def _resolved(raw: dict) -> ResolvedSpec:
    return ResolvedSpec("fo", "pipelines/fo.yml", validate(raw, check_model=False, check_data=False), raw)


@pytest.mark.parametrize("backend", ["device", "albumentations"])
def test_a_streamed_run_trains_the_model_the_in_memory_run_trains(folder: Path, backend: str) -> None:
    models = []
    for stream in (False, True):
        raw = _spec(folder, stream=stream)
        raw["augment"]["backend"] = backend
        rs = _resolved(raw)
        samples = ingest(rs.spec)
        assert isinstance(samples.x, StreamedImages if stream else ImageArray)
        parts = split(rs.spec, samples)
        trained = fit_experiment(rs, samples, parts)
        pred = predictor_for(rs.spec, trained.artifact).predict(eval_view(rs.spec.augment, samples.x[parts.test], "test"))
        models.append((parts, trained.artifact, pred))
    (pa, a, xa), (pb, b, xb) = models
    assert all(np.array_equal(getattr(pa, k), getattr(pb, k)) for k in ("train", "val", "test"))
    assert a.meta["mean"] == b.meta["mean"]  # fewer images than data.stream_stats: every one is used
    assert all(torch.equal(a.state_dict[k], b.state_dict[k]) for k in a.state_dict)
    assert np.array_equal(xa, xb)


def test_auto_streams_above_the_memory_budget_and_stores_a_file_list(folder: Path, tmp_path: Path) -> None:
    rs = _resolved(_spec(folder, memory_budget=1e-6))  # about 1 KiB: 150 images of 300 bytes exceed it
    samples = ingest(rs.spec)
    assert isinstance(samples.x, StreamedImages) and samples.x.shape == (150, 3, 10, 10)
    assert samples.n_official_test == 30 and np.bincount(samples.y).tolist() == [50, 50, 50]
    assert isinstance(ingest(_resolved(_spec(folder)).spec).x, ImageArray)  # the default budget: in memory
    store = SamplesFile(filepath=str(tmp_path / "dataset.npz"))
    store.save(samples)
    assert (tmp_path / "dataset.npz").stat().st_size < 60_000  # names, not pixels
    back = store.load()
    assert isinstance(back.x, StreamedImages) and np.array_equal(back.x[[0, 149]], samples.x[[0, 149]])


def test_normalisation_statistics_come_from_a_seeded_sample(folder: Path) -> None:
    full = ingest(_resolved(_spec(folder)).spec).x
    stats = []
    for seed in (3, 3, 4):
        raw = _spec(folder, stream=True, stream_stats=40)
        raw["seed"] = seed
        x = ingest(_resolved(raw).spec).x
        assert x.stats_sample == 40
        stats.append(x.rows(np.arange(120)).mean(axis=(0, 2, 3)))
    assert np.array_equal(stats[0], stats[1]) and not np.array_equal(stats[0], stats[2])
    exact = full.rows(np.arange(120)).mean(axis=(0, 2, 3))
    assert not np.array_equal(stats[0], exact) and np.allclose(stats[0], exact, atol=0.03)


def test_an_unreadable_file_is_named_or_skipped(folder: Path, tmp_path: Path) -> None:
    import shutil

    root = tmp_path / "broken"
    shutil.copytree(folder, root)
    (root / "train" / "c1" / "bad.png").write_bytes(b"not an image")
    with pytest.raises(DataError, match=r"bad\.png"):
        ingest(_resolved(_spec(root, stream=True)).spec)
    samples = ingest(_resolved(_spec(root, stream=True, on_error="skip")).spec)
    assert len(samples.x) == 150 and samples.meta["skipped"][0].endswith("bad.png")


def _write(tmp_path: Path, raw: dict) -> Path:
    path = tmp_path / "pipelines" / "s.yml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.mark.parametrize(("change", "where", "word"), [
    ({"data": {"source": {"type": "sklearn", "name": "digits"}, "stream": True}}, "data.stream", "image_folder"),
    ({"augment": {"offline": {"copies": 1}, "train": [{"HorizontalFlip": {}}]}}, "augment.offline", "in memory"),
    ({"data": {"memory_budget": 1e-6}, "augment": {"offline": {"copies": 1}, "train": [{"HorizontalFlip": {}}]}},
     "augment.offline", "memory_budget"),
    ({"data": {"resize": [8, 8]}}, "data.resize", "data.source.size"),
])
def test_validate_refuses_what_streaming_cannot_do(folder: Path, tmp_path: Path, change: dict, where: str,
                                                   word: str) -> None:
    raw = _spec(folder, stream=True)
    for section, value in change.items():
        raw[section] = {**raw[section], **value}
    if "memory_budget" in raw["data"]:
        raw["data"].pop("stream")
    path = _write(tmp_path, raw)
    with pytest.raises(SpecError) as info:
        load_spec(path)
    err = info.value
    assert err.path == where and err.file == str(path) and word in str(err), str(err)

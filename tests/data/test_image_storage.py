"""8-bit images stay uint8 (in memory, in dataset.npz, on the training device) and give the very
numbers the float32 readers gave: the same stored pixels, the same trained weights, the same metrics."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from deeppipe.augment.apply import eval_view
from deeppipe.data.batches import TensorBatches
from deeppipe.data.samples_file import SamplesFile
from deeppipe.data.sources import Samples, load_source
from deeppipe.data.sources.images import IdxSource, ImageFolderSource, read_idx
from deeppipe.data.stage import ingest, split
from deeppipe.data.storage import ImageArray, rows
from deeppipe.evaluation.predictor import predictor_for
from deeppipe.spec.loader import ResolvedSpec, validate
from deeppipe.training.stage import fit_experiment

FASHION = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "fashion-mnist"
needs_fashion = pytest.mark.skipif(not FASHION.exists(), reason="shared Fashion-MNIST not present")


def _write_idx(path: Path, arr: np.ndarray) -> None:
    header = bytes([0, 0, 0x08, arr.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in arr.shape)
    path.write_bytes(header + arr.astype(np.uint8).tobytes())


@pytest.fixture(scope="module")
def fashion(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """600 training and 200 test images of the real Fashion-MNIST, as uncompressed IDX files."""
    if not FASHION.exists():
        pytest.skip("shared Fashion-MNIST not present")
    root = tmp_path_factory.mktemp("fashion")
    for stem, n in (("train-images-idx3-ubyte", 600), ("train-labels-idx1-ubyte", 600),
                    ("t10k-images-idx3-ubyte", 200), ("t10k-labels-idx1-ubyte", 200)):
        _write_idx(root / stem, read_idx(FASHION / f"{stem}.gz")[:n])
    return root


def _old_float(raw: np.ndarray) -> np.ndarray:
    """What the readers returned before: float32, divided by 255."""
    x = raw.astype(np.float32)
    x /= 255.0
    return x


def test_idx_images_are_uint8_memory_mapped_and_read_as_before(tmp_path: Path) -> None:
    x = np.random.default_rng(0).integers(0, 256, (40, 7, 7)).astype(np.uint8)
    _write_idx(tmp_path / "train-images-idx3-ubyte", x)
    _write_idx(tmp_path / "train-labels-idx1-ubyte", np.arange(40) % 4)
    d = load_source(IdxSource(type="idx", path=str(tmp_path)))
    assert isinstance(d.x, ImageArray) and isinstance(d.x.raw, np.memmap) and d.x.raw.dtype == np.uint8
    assert d.x.nbytes == 40 * 49 and d.x.dtype == np.float32 and d.sample_shape == (1, 7, 7)
    old = _old_float(x)[:, None]
    assert np.array_equal(np.asarray(d.x), old) and np.array_equal(d.x[[5, 2]], old[[5, 2]])
    assert np.array_equal(d.x[3], old[3]) and isinstance(rows(d.x, slice(0, 10)), ImageArray)
    # the statistics normalisation stores, computed without a float copy, equal the float32 ones
    assert np.allclose(d.x.mean(axis=(0, 2, 3)), old.mean(axis=(0, 2, 3), dtype=np.float64), rtol=1e-12)
    assert np.allclose(d.x.std(axis=(0, 2, 3)), old.std(axis=(0, 2, 3), dtype=np.float64), rtol=1e-9)
    # gzipped files cannot be mapped (no random access in gzip): read whole, still uint8
    with gzip.open(tmp_path / "train-images-idx3-ubyte.gz", "wb") as f:
        f.write((tmp_path / "train-images-idx3-ubyte").read_bytes())
    (tmp_path / "train-images-idx3-ubyte").unlink()
    z = load_source(IdxSource(type="idx", path=str(tmp_path)))
    assert not isinstance(z.x.raw, np.memmap) and np.array_equal(np.asarray(z.x), old)


def test_image_folder_is_uint8_unless_an_image_is_wider(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    for c in ("a", "b"):
        (tmp_path / c).mkdir()
        for i in range(3):
            Image.fromarray(rng.integers(0, 256, (9, 9, 3), dtype=np.uint8)).save(tmp_path / c / f"{i}.png")
    src = ImageFolderSource(type="image_folder", path=str(tmp_path), size=(6, 5))
    d = load_source(src)
    assert isinstance(d.x, ImageArray) and d.x.shape == (6, 3, 6, 5)
    with Image.open(tmp_path / "a" / "0.png") as im:  # the pixels PIL resizes to, / 255 (as before)
        ref = np.asarray(im.convert("RGB").resize((5, 6), Image.BILINEAR), dtype=np.float32) / 255.0
    assert np.array_equal(d.x[0], ref.transpose(2, 0, 1))
    Image.fromarray(np.full((9, 9), 40000, np.uint16)).save(tmp_path / "b" / "wide.png")  # 16-bit grey
    wide = load_source(src)
    assert not isinstance(wide.x, ImageArray) and wide.x.dtype == np.float32
    assert np.array_equal(wide.x[0], d.x[0])


def test_the_stored_data_set_keeps_bytes_and_maps_them(fashion: Path, tmp_path: Path) -> None:
    d = load_source(IdxSource(type="idx", path=str(fashion)))
    store = SamplesFile(filepath=str(tmp_path / "dataset.npz"))
    store.save(d)
    assert (tmp_path / "dataset.npz").stat().st_size < 800 * 784 + 20_000  # one byte per pixel, not four
    back = store.load()
    assert isinstance(back.x, ImageArray) and isinstance(back.x.raw, np.memmap)
    assert np.array_equal(np.asarray(back.x), np.asarray(d.x)) and np.array_equal(back.y, d.y)
    assert back.n_official_test == 200 and back.task == d.task


def test_uint8_batches_become_the_float_batches_on_the_device() -> None:
    raw = np.random.default_rng(2).integers(0, 256, (50, 1, 4, 4)).astype(np.uint8)
    y = np.arange(50)
    flip = lambda xb, gen: torch.where(torch.rand(len(xb), 1, 1, 1, generator=gen) < 0.5, xb.flip(-1), xb)  # noqa: E731
    new = TensorBatches(torch.from_numpy(raw), y, 16, seed=4, batch_transform=flip)
    old = TensorBatches(_old_float(raw), y, 16, seed=4, batch_transform=flip)
    assert new.x.dtype == torch.uint8  # held as bytes
    for (a, ya), (b, yb) in zip(new.epoch(3), old.epoch(3), strict=True):
        assert a.dtype == torch.float32 and torch.equal(a, b) and torch.equal(ya, yb)
    # a split's rows of an ImageArray: gathered from the one base, never copied out of it
    idx = np.random.default_rng(3).permutation(50)[:33]
    part = ImageArray(raw).rows(idx)
    assert part.raw is raw and part.shape == (33, 1, 4, 4) and np.array_equal(part[[0, 5]], _old_float(raw[idx[[0, 5]]]))
    lazy = TensorBatches(part, y[idx], 8, seed=1, batch_transform=flip)
    assert lazy.x.data_ptr() == torch.from_numpy(raw).data_ptr()
    copied = TensorBatches(_old_float(raw[idx]), y[idx], 8, seed=1, batch_transform=flip)
    for (a, ya), (b, yb) in zip(lazy.epoch(0), copied.epoch(0), strict=True):
        assert torch.equal(a, b) and torch.equal(ya, yb)


SPEC = {
    "seed": 5,
    "data": {"source": {"type": "idx"}, "split": {"val": 0.15, "test": "official"}},
    "augment": {"train": [{"HorizontalFlip": {"p": 0.5}}, {"Affine": {"translate_px": [-2, 2], "p": 0.5}}],
                "tta": [{"HorizontalFlip": {}}]},
    "model": {"layers": [{"Conv2d": {"out_channels": 6, "kernel_size": 3, "padding": 1}}, {"ReLU": {}},
                         {"MaxPool2d": {"kernel_size": 2}}, {"Flatten": {}}, {"Linear": {"out_features": 10}}]},
    "train": {"epochs": 1, "batch_size": 64, "optimizer": {"name": "adam", "lr": 0.003}, "progress": False},
}


@needs_fashion
@pytest.mark.parametrize("backend", ["device", "albumentations"])
def test_training_on_bytes_gives_the_model_float32_gave(fashion: Path, backend: str) -> None:
    """Normalisation statistics, augmentation (batched on the device, or per sample in a worker),
    TTA: the same weights and the same test predictions from uint8 inputs as from the old float32 ones."""
    raw = {**SPEC, "data": {**SPEC["data"], "source": {"type": "idx", "path": str(fashion)}},
           "augment": {**SPEC["augment"], "backend": backend, "num_workers": 1 if backend == "albumentations" else 0}}
    rs = ResolvedSpec("fm", "pipelines/fm.yml", validate(raw, check_model=False, check_data=False), raw)
    new = ingest(rs.spec)
    assert isinstance(new.x, ImageArray)
    old = Samples(np.asarray(new.x), new.y, new.task, new.n_official_test, new.meta)
    runs = []
    for samples in (new, old):
        parts = split(rs.spec, samples)
        trained = fit_experiment(rs, samples, parts)
        predictor = predictor_for(rs.spec, trained.artifact)  # TTA: the mean over the original and a flip
        runs.append((trained.artifact, predictor.predict(eval_view(rs.spec.augment, samples.x[parts.test], "test"))))
    (a, pa), (b, pb) = runs
    assert a.meta["mean"] == b.meta["mean"] and a.meta["std"] == b.meta["std"]
    assert all(torch.equal(a.state_dict[k], b.state_dict[k]) for k in a.state_dict)
    assert np.array_equal(pa, pb)
    assert (pa.argmax(1) == new.y[parts.test]).mean() > 0.4  # 1 epoch on 510 images, 10 classes

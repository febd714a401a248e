"""build_train_source / build_eval_transform / tta_predict / materialise / write_preview on real data."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from deeppipe.augment import (
    AugmentConfig,
    augmented_shape,
    build_eval_transform,
    build_train_source,
    materialise,
    tta_predict,
    write_preview,
)
from deeppipe.augment.loader import AlbumentationsBatches
from deeppipe.data.batches import TensorBatches
from deeppipe.errors import SpecError

CPU = torch.device("cpu")
DEVICE_PIPE = [
    {"HorizontalFlip": {"p": 0.5}},
    {"Affine": {"rotate": [-15, 15], "translate_percent": [-0.1, 0.1], "p": 0.7}},
    {"RandomBrightnessContrast": {"p": 0.5}},
    {"CoarseDropout": {"p": 0.3}},
]
SAMPLE_PIPE = [{"OneOf": {"transforms": ["HorizontalFlip", "Blur"]}}, "GaussNoise"]


def _epoch(src, e=0):
    xs, ys = zip(*src.epoch(e), strict=True)
    return torch.cat(xs), torch.cat(ys)


@pytest.mark.parametrize("cfg", [None, AugmentConfig(), AugmentConfig(train=[])])
def test_no_augmentation_is_plain_tensor_batches(digits, cfg):
    x, y = digits
    src = build_train_source(cfg, x, y, batch_size=100, device=CPU, seed=3)
    assert isinstance(src, TensorBatches) and src.batch_transform is None
    xb, yb = _epoch(src)
    assert len(src) == 18 and src.num_samples == len(x)
    # a permutation of the untouched data
    def rows(a, b):  # every (image, label) row, in a canonical order
        flat = np.concatenate([a.reshape(len(a), -1), np.asarray(b)[:, None]], axis=1)
        return flat[np.lexsort(flat.T[::-1])]

    assert np.array_equal(rows(xb.numpy(), yb.numpy()), rows(x, y))


def test_tabular_data_with_augment_train_is_a_spec_error():
    x = np.random.default_rng(0).random((50, 6), dtype=np.float32)
    y = np.zeros(50, dtype=np.int64)
    with pytest.raises(SpecError) as info:
        build_train_source(AugmentConfig(train=["HorizontalFlip"]), x, y, batch_size=8,
                           device=CPU, seed=0)
    assert info.value.path == "augment.train" and "(50, 6)" in str(info.value)
    # without augmentation tabular data is fine
    assert len(build_train_source(None, x, y, batch_size=8, device=CPU, seed=0)) == 7


def test_device_path_chosen_and_reproducible(fashion_slice):
    x, y = fashion_slice
    msgs: list[str] = []
    cfg = AugmentConfig(train=DEVICE_PIPE)
    src = build_train_source(cfg, x, y, batch_size=256, device=CPU, seed=7, log=msgs.append)
    assert isinstance(src, TensorBatches) and src.batch_transform is not None
    assert "device-side" in msgs[0] and "Affine" in msgs[0]
    a, ya = _epoch(src, 0)
    b, yb = _epoch(build_train_source(cfg, x, y, batch_size=256, device=CPU, seed=7), 0)
    assert torch.equal(a, b) and torch.equal(ya, yb)
    c, _ = _epoch(src, 1)
    assert a.shape == (2000, 1, 28, 28) and a.dtype == torch.float32
    assert float(a.min()) >= 0.0 and float(a.max()) <= 1.0
    assert not torch.equal(a, c)  # a new random view each epoch
    # augmentation changed a large share of images but kept their overall brightness
    xs = torch.as_tensor(x)
    assert abs(float(a.mean()) - float(xs.mean())) < 0.03
    assert x.sum() == pytest.approx(float(xs.sum()))  # the input array is untouched


def test_fallback_is_logged_with_reason_and_reproducible_across_workers(digits):
    x, y = digits
    x, y = x[:600], y[:600]
    msgs: list[str] = []
    cfg = AugmentConfig(train=SAMPLE_PIPE)
    src0 = build_train_source(cfg, x, y, batch_size=64, device=CPU, seed=1, num_workers=0,
                              log=msgs.append)
    assert isinstance(src0, AlbumentationsBatches)
    assert "per-sample albumentations" in msgs[0] and "OneOf" in msgs[0]
    src2 = build_train_source(cfg, x, y, batch_size=64, device=CPU, seed=1, num_workers=2)
    a0, y0 = _epoch(src0, 0)
    a2, y2 = _epoch(src2, 0)
    assert torch.equal(a0, a2) and torch.equal(y0, y2)  # same batches whatever the worker count
    b0, _ = _epoch(src0, 1)
    assert not torch.equal(a0, b0)
    assert a0.shape == (600, 1, 8, 8) and a0.dtype == torch.float32
    assert float(a0.min()) >= 0.0 and float(a0.max()) <= 1.0
    assert len(src0) == 10 and src0.num_samples == 600


def test_backend_albumentations_forces_per_sample(digits):
    x, y = digits
    cfg = AugmentConfig(train=["HorizontalFlip"], backend="albumentations", num_workers=0)
    assert isinstance(build_train_source(cfg, x, y, batch_size=64, device=CPU, seed=0),
                      AlbumentationsBatches)


def test_val_and_test_untouched_unless_declared(digits):
    x, _ = digits
    cfg = AugmentConfig(train=DEVICE_PIPE)
    assert build_eval_transform(cfg, "val") is None
    assert build_eval_transform(cfg, "test") is None
    assert build_eval_transform(None, "val") is None
    cfg = AugmentConfig(train=DEVICE_PIPE, val=[{"PadIfNeeded": {"min_height": 12, "min_width": 12}},
                                                {"Resize": {"height": 8, "width": 8}}])
    tf = build_eval_transform(cfg, "val")
    out = tf(x[:50])
    assert out.shape == (50, 1, 8, 8) and out.dtype == np.float32
    # padding 2 px each side then shrinking to 8x8 makes the digit smaller: border gets darker
    assert out[:, :, 0, :].mean() < x[:50, :, 0, :].mean() + 1e-6
    assert np.array_equal(out, tf(x[:50]))
    assert build_eval_transform(cfg, "test") is None
    with pytest.raises(ValueError):
        build_eval_transform(cfg, "train")


def test_tta_averages_original_and_views(fashion_slice):
    x = fashion_slice[0][:64]

    def left_half_mean(a: np.ndarray) -> np.ndarray:
        return a[:, :, :, :14].mean(axis=(1, 2, 3))[:, None]

    cfg = AugmentConfig(tta=["HorizontalFlip"])
    got = tta_predict(left_half_mean, x, cfg)
    want = (left_half_mean(x) + x[:, :, :, 14:].mean(axis=(1, 2, 3))[:, None]) / 2
    np.testing.assert_allclose(got, want, rtol=1e-5)
    assert np.allclose(tta_predict(left_half_mean, x, None), left_half_mean(x))
    # three views: original, flip, flip+vflip (a list = steps applied together)
    cfg = AugmentConfig(tta=["HorizontalFlip", ["HorizontalFlip", "VerticalFlip"]])
    got = tta_predict(lambda a: a[:, :, :14, :14].mean(axis=(1, 2, 3)), x, cfg)
    want = (x[:, :, :14, :14].mean(axis=(1, 2, 3)) + x[:, :, :14, 14:].mean(axis=(1, 2, 3))
            + x[:, :, 14:, 14:].mean(axis=(1, 2, 3))) / 3
    np.testing.assert_allclose(got, want, rtol=1e-5)


def test_materialise_offline_copies(digits):
    x, y = digits
    x, y = x[:200], y[:200]
    cfg = AugmentConfig(train=DEVICE_PIPE, offline={"copies": 3})
    xa, ya = materialise(cfg, x, y, seed=5)
    assert xa.shape == (800, 1, 8, 8) and xa.dtype == np.float32
    assert np.array_equal(xa[:200], x) and np.array_equal(ya, np.tile(y, 4))
    assert not np.array_equal(xa[200:400], xa[400:600])  # copies differ from each other
    xb, _ = materialise(cfg, x, y, seed=5)
    assert np.array_equal(xa, xb)
    cfg = AugmentConfig(train=SAMPLE_PIPE, offline={"copies": 1, "include_original": False})
    xa, ya = materialise(cfg, x, y, seed=5)
    assert xa.shape == (200, 1, 8, 8) and np.array_equal(ya, y)
    # training on the materialised set does not augment it again unless asked
    src = build_train_source(cfg, xa, ya, batch_size=32, device=CPU, seed=0)
    assert isinstance(src, TensorBatches) and src.batch_transform is None


def test_write_preview_png(tmp_path, fashion_slice, rgb_patches):
    import matplotlib.image as mpimg

    cfg = AugmentConfig(train=DEVICE_PIPE)
    out = write_preview(cfg, fashion_slice[0], tmp_path / "r" / "preview.png", n=8, seed=0)
    img = mpimg.imread(out)
    assert img.ndim == 3 and img.shape[0] > 100 and img.shape[1] > 300
    assert not list((tmp_path / "r").glob(".*"))  # no temp files left behind
    cfg = AugmentConfig(train=[{"RandomResizedCrop": {"size": [24, 24]}}, "HueSaturationValue"])
    out = write_preview(cfg, rgb_patches, tmp_path / "rgb.png", n=4)
    assert mpimg.imread(out).shape[1] > 200


def test_size_changing_pipelines_need_matching_eval_sizes(fashion_slice):
    x, y = fashion_slice
    crop = [{"RandomCrop": {"height": 24, "width": 24}}]
    with pytest.raises(SpecError) as info:
        build_train_source(AugmentConfig(train=crop), x, y, batch_size=64, device=CPU, seed=0)
    assert info.value.path == "augment.val" and "(1, 24, 24)" in str(info.value)
    cfg = AugmentConfig(train=crop, val=[{"CenterCrop": {"height": 24, "width": 24}}],
                        test=[{"Resize": {"height": 24, "width": 24}}])
    assert augmented_shape(cfg, (1, 28, 28)) == (1, 24, 24)
    assert augmented_shape(cfg, (1, 28, 28), "val") == (1, 24, 24)
    assert augmented_shape(None, (1, 28, 28)) == (1, 28, 28)
    xb, _ = next(iter(build_train_source(cfg, x, y, batch_size=64, device=CPU, seed=0).epoch(0)))
    assert xb.shape == (64, 1, 24, 24)

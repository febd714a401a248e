"""Each transform family of the issue, on real images, through the YAML -> albumentations path.

Checks: output shape and dtype, value range, the transform did what its name says (measured),
and that a fixed seed reproduces the same augmented batch while another seed does not.
"""

from __future__ import annotations

import numpy as np
import pytest

from deeppipe.augment.pipeline import build_compose
from deeppipe.augment.transform import apply_compose


def run(steps, x, seed=0):
    compose = build_compose(steps, "augment.train")
    out = apply_compose(compose, x, seed=seed)
    again = apply_compose(build_compose(steps, "augment.train"), x, seed=seed)
    assert np.array_equal(out, again), "a fixed seed must reproduce the batch"
    assert out.dtype == np.float32
    return out


def in_unit_range(a):
    return float(a.min()) >= 0.0 and float(a.max()) <= 1.0 + 1e-6


@pytest.fixture(scope="module")
def fx(fashion_slice):
    return fashion_slice[0][:200]


def test_flips(fx):
    out = run([{"HorizontalFlip": {"p": 1.0}}], fx)
    assert np.array_equal(out, fx[:, :, :, ::-1])
    out = run([{"VerticalFlip": {"p": 1.0}}], fx)
    assert np.array_equal(out, fx[:, :, ::-1, :])
    out = run([{"HorizontalFlip": {"p": 0.5}}], fx)
    flipped = np.array([np.array_equal(o, f[:, :, ::-1]) and not np.array_equal(o, f)
                        for o, f in zip(out, fx, strict=True)])
    assert 0.38 < flipped.mean() < 0.62  # p = 0.5 per image


def test_rotation_moves_mass_but_keeps_centre(fx):
    out = run([{"Affine": {"rotate": [30, 30], "p": 1.0}}], fx)
    assert out.shape == fx.shape and in_unit_range(out)
    # rotating by 30 degrees about the centre: the centre pixel region barely changes,
    # the image as a whole changes a lot
    assert np.abs(out - fx).mean() > 0.1
    assert np.abs(out[:, :, 12:16, 12:16] - fx[:, :, 12:16, 12:16]).mean() < 0.1
    # rotating back recovers the interior (interpolation blurs a little)
    back = run([{"Affine": {"rotate": [-30, -30], "p": 1.0}}], out)
    assert np.abs(back[:, :, 8:20, 8:20] - fx[:, :, 8:20, 8:20]).mean() < 0.05


def test_scale_zoom(fx):
    out = run([{"Affine": {"scale": [0.5, 0.5], "p": 1.0}}], fx)
    # zooming out by 2 leaves a black frame: the outer quarter is empty
    assert out[:, :, :6, :].max() == 0.0 and out[:, :, :, -6:].max() == 0.0
    assert out.sum() == pytest.approx(fx.sum() / 4, rel=0.08)


def test_translation(fx):
    out = run([{"Affine": {"translate_px": {"x": [3, 3], "y": [0, 0]}, "p": 1.0}}], fx)
    np.testing.assert_allclose(out[:, :, :, 3:], fx[:, :, :, :-3], atol=1e-6)
    assert out[:, :, :, :3].max() == 0.0


def test_shear(fx):
    out = run([{"Affine": {"shear": {"x": [20, 20], "y": [0, 0]}, "p": 1.0}}], fx)
    # a horizontal shear keeps each row's content in that row: row sums are nearly preserved
    # where nothing leaves the frame (middle rows), while the image changes
    assert np.abs(out - fx).mean() > 0.05
    np.testing.assert_allclose(out[:, :, 13:15].sum(axis=(1, 2, 3)),
                               fx[:, :, 13:15].sum(axis=(1, 2, 3)), rtol=0.15)


def test_brightness_contrast(fx):
    out = run([{"RandomBrightnessContrast": {"brightness_limit": [0.2, 0.2],
                                             "contrast_limit": [0, 0], "p": 1.0}}], fx)
    np.testing.assert_allclose(out, np.clip(fx + 0.2, 0, 1), atol=1e-6)
    out = run([{"RandomBrightnessContrast": {"brightness_limit": 0, "contrast_limit": [-0.5, -0.5],
                                             "p": 1.0}}], fx)
    np.testing.assert_allclose(out, fx * 0.5, atol=1e-6)


def test_hue_saturation_on_rgb(rgb_patches):
    x = rgb_patches
    # albumentations shifts HSV in uint8 units (S and V in 0..255, H in 0..180) for float images too
    gray = run([{"HueSaturationValue": {"hue_shift_limit": 0, "sat_shift_limit": [-255, -255],
                                        "val_shift_limit": 0, "p": 1.0}}], x)
    assert gray.shape == x.shape and in_unit_range(gray)
    # saturation -255: every pixel becomes grey, channels equal
    assert np.abs(gray[:, 0] - gray[:, 1]).max() < 0.02 and np.abs(gray[:, 1] - gray[:, 2]).max() < 0.02
    assert np.abs(x[:, 0] - x[:, 1]).mean() > 0.02
    shifted = run([{"HueSaturationValue": {"hue_shift_limit": [60, 60], "sat_shift_limit": 0,
                                           "val_shift_limit": 0, "p": 1.0}}], x)
    # a hue shift keeps each pixel's max channel (HSV value) but moves colours
    np.testing.assert_allclose(shifted.max(axis=1), x.max(axis=1), atol=0.02)
    assert np.abs(shifted - x).mean() > 0.02
    jit = run([{"ColorJitter": {"p": 1.0}}], x)
    assert jit.shape == x.shape and in_unit_range(jit)


def test_gaussian_noise(fx):
    out = run([{"GaussNoise": {"std_range": [0.1, 0.1], "p": 1.0}}], fx)
    diff = (out - fx)[(fx > 0.2) & (fx < 0.8)]  # where clipping at 0 / 1 cannot interfere
    assert abs(diff.std() - 0.1) < 0.01 and abs(diff.mean()) < 0.01
    assert in_unit_range(out)
    assert not np.array_equal(out, run([{"GaussNoise": {"std_range": [0.1, 0.1], "p": 1.0}}],
                                       fx, seed=1))


def test_random_crop_and_resized_crop(fx):
    out = run([{"RandomCrop": {"height": 20, "width": 24}}], fx)
    assert out.shape == (200, 1, 20, 24)
    # each crop is a window of its source image
    i = 7
    hits = [(r, c) for r in range(9) for c in range(5)
            if np.array_equal(out[i, 0], fx[i, 0, r:r + 20, c:c + 24])]
    assert hits
    out = run([{"RandomResizedCrop": {"size": [16, 16], "scale": [0.3, 1.0]}}], fx)
    assert out.shape == (200, 1, 16, 16) and in_unit_range(out)


def test_coarse_dropout_and_erasing(fx):
    out = run([{"CoarseDropout": {"num_holes_range": [2, 2], "hole_height_range": [6, 6],
                                  "hole_width_range": [6, 6], "fill": 0, "p": 1.0}}], fx)
    zeroed = ((out == 0) & (fx > 0)).sum(axis=(1, 2, 3))
    assert (zeroed > 0).mean() > 0.9 and zeroed.max() <= 72
    assert np.all((out == fx) | (out == 0))
    out = run([{"Erasing": {"scale": [0.1, 0.1], "ratio": [1, 1], "fill": 0.5, "p": 1.0}}], fx)
    filled = (out == 0.5).sum(axis=(1, 2, 3))
    assert np.median(filled) == pytest.approx(0.1 * 28 * 28, rel=0.15)


def test_normalize(fx):
    out = run([{"Normalize": {"mean": 0.5, "std": 0.25, "max_pixel_value": 1.0}}], fx)
    np.testing.assert_allclose(out, (fx - 0.5) / 0.25, atol=1e-5)


def test_resize(digits):
    x = digits[0][:100]
    out = run([{"Resize": {"height": 16, "width": 16}}], x)
    assert out.shape == (100, 1, 16, 16) and in_unit_range(out)
    assert out.mean() == pytest.approx(x.mean(), rel=0.05)


def test_random_pipeline_reproduces_and_differs_by_seed(digits):
    x = digits[0][:300]
    steps = [{"OneOf": {"transforms": [{"Affine": {"rotate": [-20, 20]}}, "Sobel"]}},
             {"SomeOf": {"n": 1, "transforms": ["HorizontalFlip", "GaussNoise"]}}]
    a = run(steps, x, seed=4)
    b = run(steps, x, seed=5)
    assert not np.array_equal(a, b)
    assert a.shape == x.shape

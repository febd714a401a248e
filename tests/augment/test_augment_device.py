"""The device-side batch path reproduces albumentations: exactly for fixed parameters, in
distribution for random ones; respects p; is seeded; and says why when it cannot run a step."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from deeppipe.augment.device import DeviceAugment, plan_device
from deeppipe.augment.pipeline import build_compose
from deeppipe.augment.transform import apply_compose


@pytest.fixture(scope="module")
def fx(fashion_slice):
    return fashion_slice[0][:400]


def both(steps, x, seed=0):
    compose = build_compose(steps, "augment.train")
    plan = plan_device(compose)
    assert isinstance(plan, DeviceAugment), plan
    ref = apply_compose(compose, x, seed=seed)
    dev = plan(torch.from_numpy(x), torch.Generator().manual_seed(seed)).numpy()
    return ref, dev


FIXED = [
    [{"Affine": {"rotate": [15, 15], "p": 1}}],
    [{"Affine": {"rotate": [15, 15], "scale": [1.2, 1.2], "translate_px": [3, 3], "shear": [7, 7],
                 "p": 1}}],
    [{"Affine": {"scale": [0.8, 0.8], "translate_percent": [0.1, 0.1], "fill": 0.5, "p": 1}}],
    [{"Affine": {"rotate": [30, 30], "interpolation": 0, "p": 1}}],
    [{"HorizontalFlip": {"p": 1}}, {"VerticalFlip": {"p": 1}}],
    [{"RandomBrightnessContrast": {"brightness_limit": [0.1, 0.1], "contrast_limit": [0.3, 0.3],
                                   "p": 1}}],
    [{"RandomBrightnessContrast": {"brightness_limit": [0.1, 0.1], "contrast_limit": [-0.3, -0.3],
                                   "brightness_by_max": False, "p": 1}}],
    [{"PadIfNeeded": {"min_height": 33, "min_width": 35, "fill": 0.2}},
     {"CenterCrop": {"height": 30, "width": 31}}],
    [{"Resize": {"height": 16, "width": 16}}],
    [{"Resize": {"height": 40, "width": 40}}],
    [{"Resize": {"height": 40, "width": 40, "interpolation": 0}}],
    [{"Normalize": {"mean": 0.3, "std": 0.2, "max_pixel_value": 1.0}}],
    [{"CoarseDropout": {"hole_height_range": [28, 28], "hole_width_range": [28, 28], "fill": 0.3,
                        "p": 1}}],
]


@pytest.mark.parametrize("steps", FIXED, ids=lambda s: "+".join(next(iter(t)) for t in s))
def test_matches_albumentations_for_fixed_parameters(steps, fx):
    ref, dev = both(steps, fx[:100])
    assert ref.shape == dev.shape and dev.dtype == np.float32
    np.testing.assert_allclose(dev, ref, atol=2e-5)


def _per_image_stats(a):
    return a.mean(axis=(1, 2, 3))


@pytest.mark.parametrize(
    ("steps", "stat", "tol"),
    [
        ([{"RandomBrightnessContrast": {"p": 0.8}}], "mean", 0.01),
        ([{"Affine": {"rotate": [-30, 30], "scale": [0.8, 1.2], "translate_percent": [-0.1, 0.1],
                      "shear": [-10, 10], "p": 0.7}}], "change", 0.012),
        ([{"CoarseDropout": {"num_holes_range": [1, 4], "hole_height_range": [0.1, 0.3],
                             "hole_width_range": [0.05, 0.3], "p": 0.6}}], "zeroed", 0.01),
        ([{"CoarseDropout": {"num_holes_range": [2, 3], "hole_height_range": [2, 6],
                             "hole_width_range": [3, 9], "p": 0.9}}], "zeroed", 0.01),
        ([{"Erasing": {"p": 0.7}}], "zeroed", 0.02),
        ([{"GaussNoise": {"std_range": [0.05, 0.2], "p": 0.5}}], "change", 0.01),
        ([{"PadIfNeeded": {"min_height": 36, "min_width": 36}}, {"RandomCrop": {"height": 28,
                                                                               "width": 28}}],
         "shift", 0.15),
    ],
)
def test_random_steps_match_in_distribution(steps, stat, tol, fashion_slice):
    x = fashion_slice[0]
    ref, dev = both(steps, x, seed=3)
    if stat == "mean":
        a, b = _per_image_stats(ref), _per_image_stats(dev)
        assert abs(a.mean() - b.mean()) < tol and abs(a.std() - b.std()) < 2 * tol
    elif stat == "change":
        a, b = np.abs(ref - x).mean(), np.abs(dev - x).mean()
        assert a > 0.01 and abs(a - b) < tol, (a, b)
    elif stat == "zeroed":
        a = ((ref == 0) & (x > 0)).mean()
        b = ((dev == 0) & (x > 0)).mean()
        assert a > 0.01 and abs(a - b) < tol, (a, b)
    else:
        # pad 4 + random 28x28 crop shifts content by -4..4 px; cut-off content shrinks the
        # measured shift a little, equally for both paths
        def row_centre(a):
            m = a.sum(axis=(1, 3))
            return (m * np.arange(a.shape[2])).sum(axis=1) / np.maximum(m.sum(axis=1), 1e-6)

        sr, sd = row_centre(ref) - row_centre(x), row_centre(dev) - row_centre(x)
        assert sr.std() > 1.5 and abs(sr.std() - sd.std()) < tol, (sr.std(), sd.std())
        assert abs(sr.mean()) < tol and abs(sd.mean()) < tol


def test_probability_seed_and_shape(fx):
    compose = build_compose([{"HorizontalFlip": {"p": 0.3}},
                             {"PadIfNeeded": {"min_height": 32, "min_width": 32}},
                             {"RandomCrop": {"height": 28, "width": 28}}], "augment.train")
    plan = plan_device(compose)
    xt = torch.from_numpy(fx)
    a = plan(xt, torch.Generator().manual_seed(1))
    b = plan(xt, torch.Generator().manual_seed(1))
    c = plan(xt, torch.Generator().manual_seed(2))
    assert a.shape == (400, 1, 28, 28)
    assert torch.equal(a, b) and not torch.equal(a, c)
    flips = build_compose([{"HorizontalFlip": {"p": 0.3}}], "t")
    out = plan_device(flips)(xt, torch.Generator().manual_seed(0))
    flipped = (out != xt).flatten(1).any(dim=1).float().mean()
    assert 0.23 < float(flipped) < 0.37


@pytest.mark.parametrize(
    ("steps", "reason"),
    [
        ([{"OneOf": {"transforms": ["HorizontalFlip", "Blur"]}}],
         "inside OneOf: Blur has no device-side version"),
        ([{"RandomOrder": {"transforms": ["HorizontalFlip"]}}], "RandomOrder"),
        (["ElasticTransform"], "ElasticTransform has no device-side version"),
        ([{"Affine": {"border_mode": 4}}], "border_mode"),
        ([{"CoarseDropout": {"fill": "random"}}], "constant fill"),
        ([{"RandomCrop": {"height": 8, "width": 8, "p": 0.5}}], "p<1"),
    ],
)
def test_plan_reports_why_it_cannot(steps, reason):
    plan = plan_device(build_compose(steps, "augment.train"))
    assert isinstance(plan, str) and reason in plan


def _kinds(out, x):
    """Per image: 0 untouched, 1 h-flipped, 2 v-flipped, 3 both (rotated 180), -1 other."""
    x = np.asarray(x)
    out = np.asarray(out)
    cands = [x, x[:, :, :, ::-1], x[:, :, ::-1, :], x[:, :, ::-1, ::-1]]
    kinds = np.full(len(x), -1)
    for k in (3, 2, 1, 0):  # symmetric images match several: prefer the simplest explanation
        kinds[np.all(out == cands[k], axis=(1, 2, 3))] = k
    return kinds


@pytest.mark.parametrize(
    ("steps", "shares"),
    [
        ([{"OneOf": {"p": 0.8, "transforms": [{"HorizontalFlip": {"p": 1}},
                                               {"VerticalFlip": {"p": 0.5}}]}}],
         {0: 0.2, 1: 0.8 * 2 / 3, 2: 0.8 / 3, 3: 0.0}),
        ([{"SomeOf": {"n": 1, "transforms": [{"HorizontalFlip": {"p": 1}},
                                              {"VerticalFlip": {"p": 1}}]}}],
         {0: 0.0, 1: 0.5, 2: 0.5, 3: 0.0}),
        ([{"SomeOf": {"n": 2, "p": 0.6, "transforms": [{"HorizontalFlip": {"p": 1}},
                                                        {"VerticalFlip": {"p": 1}}]}}],
         {0: 0.4, 1: 0.0, 2: 0.0, 3: 0.6}),
        ([{"SomeOf": {"n": 2, "replace": True, "transforms": [{"HorizontalFlip": {"p": 1}},
                                                               {"VerticalFlip": {"p": 1}}]}}],
         {0: 0.5, 1: 0.0, 2: 0.0, 3: 0.5}),  # the same flip twice undoes itself
        ([{"Sequential": {"p": 0.3, "transforms": [{"HorizontalFlip": {"p": 1}},
                                                    {"VerticalFlip": {"p": 1}}]}}],
         {0: 0.7, 1: 0.0, 2: 0.0, 3: 0.3}),
    ],
)
def test_containers_on_device_match_albumentations_shares(steps, shares, fashion_slice):
    x = fashion_slice[0]
    ref, dev = both(steps, x, seed=11)
    for name, out in (("albumentations", ref), ("device", dev)):
        kinds = _kinds(out, x)
        assert (kinds >= 0).all(), name
        for k, share in shares.items():
            assert abs((kinds == k).mean() - share) < 0.04, (name, k, (kinds == k).mean(), share)


def test_size_preserving_sequential_with_pad_and_crop_runs_on_device(fashion_slice):
    x = fashion_slice[0][:300]
    steps = [{"Sequential": {"p": 0.5, "transforms": [
        {"PadIfNeeded": {"min_height": 34, "min_width": 34}},
        {"RandomCrop": {"height": 28, "width": 28}}]}}]
    ref, dev = both(steps, x)
    assert ref.shape == dev.shape == x.shape
    moved = lambda a: (np.abs(a - x).reshape(len(x), -1).max(axis=1) > 0).mean()  # noqa: E731
    assert abs(moved(ref) - moved(dev)) < 0.1 and 0.3 < moved(dev) < 0.55

"""Fixed edge filters: kernels, normalisation, agreement with OpenCV's own operators, serialisation."""

from __future__ import annotations

import albumentations as A
import cv2
import numpy as np
import pytest
import torch

from deeppipe.augment.device import plan_device
from deeppipe.augment.filters import KIRSCH_N, apply_edge_filter, compass_masks
from deeppipe.augment.pipeline import build_compose
from deeppipe.augment.transform import apply_compose

NAMES = ["Prewitt", "Sobel", "Laplacian", "Kirsch", "Robinson"]


def step_image() -> np.ndarray:
    img = np.zeros((12, 12), np.float32)
    img[:, 6:] = 1.0
    return img


def test_compass_masks_are_the_eight_rotations():
    m = compass_masks(KIRSCH_N)
    assert m.shape == (8, 3, 3)
    assert len({k.tobytes() for k in m}) == 8
    assert np.all(m.sum(axis=(1, 2)) == 0)
    np.testing.assert_array_equal(m[2], [[-3, -3, 5], [-3, 0, 5], [-3, -3, 5]])  # east
    np.testing.assert_array_equal(m[4], KIRSCH_N[::-1])  # south


@pytest.mark.parametrize("name", ["prewitt", "sobel", "kirsch", "robinson"])
def test_step_edge_maps_to_one_and_flat_to_zero(name):
    out = apply_edge_filter(step_image(), name)
    assert out.shape == (12, 12) and out.dtype == np.float32
    np.testing.assert_allclose(out[:, 5], 1.0, atol=1e-6)  # dark side of the edge
    # bright side: Kirsch's 5/-3 mask is not antisymmetric, (15 - 6) / 15 = 0.6 there
    np.testing.assert_allclose(out[:, 6], 0.6 if name == "kirsch" else 1.0, atol=1e-6)
    assert out[:, :4].max() == 0.0 and out[:, 8:].max() == 0.0


def test_laplacian_4_and_8():
    img = step_image()
    np.testing.assert_allclose(apply_edge_filter(img, "laplacian", 4)[:, 5:7], 0.25, atol=1e-6)
    np.testing.assert_allclose(apply_edge_filter(img, "laplacian", 8)[:, 5:7], 3 / 8, atol=1e-6)
    assert apply_edge_filter(np.full((8, 8), 0.7, np.float32), "laplacian", 8).max() < 1e-6


def test_agrees_with_opencv_operators_on_real_images(fashion_slice):
    img = fashion_slice[0][5, 0]
    gx = cv2.Sobel(img, cv2.CV_32F, 1, 0, ksize=3, borderType=cv2.BORDER_REFLECT_101)
    gy = cv2.Sobel(img, cv2.CV_32F, 0, 1, ksize=3, borderType=cv2.BORDER_REFLECT_101)
    want = np.clip(np.sqrt(gx**2 + gy**2) / 4, 0, 1)
    np.testing.assert_allclose(apply_edge_filter(img, "sobel"), want, atol=1e-5)
    lap = cv2.Laplacian(img, cv2.CV_32F, ksize=1, borderType=cv2.BORDER_REFLECT_101)
    np.testing.assert_allclose(apply_edge_filter(img, "laplacian", 4), np.clip(np.abs(lap) / 4, 0, 1),
                               atol=1e-5)
    raw = apply_edge_filter(img, "sobel", normalize=False)
    np.testing.assert_allclose(raw, np.sqrt(gx**2 + gy**2), atol=1e-5)


@pytest.mark.parametrize("name", NAMES)
def test_as_pipeline_step_on_gray_and_rgb_and_on_device(name, digits, rgb_patches):
    for x in (digits[0][:64], rgb_patches[:16]):
        compose = build_compose([name], "augment.train")
        assert compose.transforms[0].p == 1.0
        out = apply_compose(compose, x)
        assert out.shape == x.shape and out.dtype == np.float32
        assert out.min() >= 0 and out.max() <= 1
        assert out.max() > 0.2  # real images have edges
        dev = plan_device(compose)(torch.from_numpy(x), torch.Generator().manual_seed(0)).numpy()
        np.testing.assert_allclose(dev, out, atol=1e-5)


@pytest.mark.parametrize("name", NAMES)
def test_serialisation_roundtrip(name):
    args = {"neighbours": 8} if name == "Laplacian" else {}
    compose = build_compose([{name: {"p": 0.3, "normalize": False, **args}}], "augment.train")
    data = A.to_dict(compose)
    back = A.from_dict(data)
    t = back.transforms[0]
    assert type(t).__name__ == name and t.p == 0.3 and t.normalize is False
    assert A.to_dict(back) == data

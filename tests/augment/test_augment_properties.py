"""Property-based: any mix of device-capable steps, any probabilities and seeds, on real digits,
keeps shape, dtype and [0, 1] range on both paths and reproduces from its seed."""

from __future__ import annotations

import numpy as np
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deeppipe.augment.device import DeviceAugment, plan_device
from deeppipe.augment.pipeline import build_compose
from deeppipe.augment.transform import apply_compose

prob = st.floats(0.0, 1.0)
STEPS = st.one_of(
    prob.map(lambda p: {"HorizontalFlip": {"p": p}}),
    prob.map(lambda p: {"VerticalFlip": {"p": p}}),
    st.tuples(prob, st.floats(0, 45), st.floats(0.7, 1.0), st.floats(0, 0.3)).map(
        lambda a: {"Affine": {"p": a[0], "rotate": [-a[1], a[1]], "scale": [a[2], 1 / a[2]],
                              "translate_percent": [-a[3], a[3]], "shear": [-a[1] / 3, a[1] / 3]}}),
    st.tuples(prob, st.floats(0, 0.5), st.floats(0, 0.5)).map(
        lambda a: {"RandomBrightnessContrast": {"p": a[0], "brightness_limit": a[1],
                                                "contrast_limit": a[2]}}),
    st.tuples(prob, st.floats(0.0, 0.3)).map(
        lambda a: {"GaussNoise": {"p": a[0], "std_range": [0.0, a[1]]}}),
    st.tuples(prob, st.integers(1, 4), st.floats(0.05, 0.9)).map(
        lambda a: {"CoarseDropout": {"p": a[0], "num_holes_range": [1, a[1]],
                                     "hole_height_range": [0.05, a[2]],
                                     "hole_width_range": [0.05, a[2]]}}),
    st.tuples(prob, st.floats(0.01, 0.5)).map(
        lambda a: {"Erasing": {"p": a[0], "scale": [0.01, a[1]]}}),
    prob.map(lambda p: {"Sobel": {"p": p}}),
    prob.map(lambda p: {"Laplacian": {"p": p, "neighbours": 8}}),
)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(STEPS, min_size=1, max_size=4), seed=st.integers(0, 2**31 - 1))
def test_device_capable_pipelines_are_well_behaved(steps, seed, digits):
    x = digits[0][:48]
    compose = build_compose(steps, "augment.train")
    plan = plan_device(compose)
    assert isinstance(plan, DeviceAugment)
    xt = torch.from_numpy(x)
    a = plan(xt, torch.Generator().manual_seed(seed))
    b = plan(xt, torch.Generator().manual_seed(seed))
    assert torch.equal(a, b)
    assert a.shape == xt.shape and a.dtype == torch.float32
    assert float(a.min()) >= 0.0 and float(a.max()) <= 1.0 + 1e-6
    ref = apply_compose(compose, x, seed=seed)
    assert ref.shape == x.shape and ref.dtype == np.float32
    assert float(ref.min()) >= 0.0 and float(ref.max()) <= 1.0 + 1e-6
    assert np.array_equal(xt.numpy(), x)  # inputs never modified in place

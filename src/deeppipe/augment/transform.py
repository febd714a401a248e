"""Running an albumentations Compose on deeppipe's (N, C, H, W) float arrays, reproducibly.

albumentations works on one HxWxC image at a time. Seeding is per batch, from (seed, *key) with
numpy's SeedSequence, and one generator pair is shared by every step of the pipeline; so a batch's
augmentation depends only on the seed, the epoch and the batch index, never on which worker
process ran it or how many workers there are.
"""

from __future__ import annotations

import random

import albumentations as A
import numpy as np

from deeppipe.errors import SpecError


def seed_compose(compose: A.BaseCompose, seed: int, *key: int) -> None:
    """Give every step of ``compose`` one shared generator pair derived from (seed, *key)."""
    ss = np.random.SeedSequence([int(seed) & 0xFFFFFFFF, *(int(k) & 0xFFFFFFFF for k in key)])
    rng = np.random.default_rng(ss)
    py = random.Random(int(ss.generate_state(1, dtype=np.uint64)[0]))
    compose.set_random_state(rng, py)


def augment_one(compose: A.BaseCompose, img_chw: np.ndarray) -> np.ndarray:
    """One (C, H, W) image through the pipeline -> (C', H', W') float32."""
    hwc = np.ascontiguousarray(img_chw.transpose(1, 2, 0))
    out = compose(image=hwc)["image"]
    if out.ndim == 2:  # some OpenCV calls drop a single channel axis
        out = out[:, :, None]
    return np.ascontiguousarray(out.transpose(2, 0, 1), dtype=np.float32)


def apply_compose(
    compose: A.BaseCompose, x: np.ndarray, *, seed: int = 0, key: tuple[int, ...] = ()
) -> np.ndarray:
    """Augment every image of an (N, C, H, W) array; all outputs must share one shape."""
    seed_compose(compose, seed, *key)
    outs = [augment_one(compose, img) for img in x]
    return stack_same_shape(outs)


def stack_same_shape(outs: list[np.ndarray]) -> np.ndarray:
    """np.stack with a user-facing error when the pipeline made images of different sizes."""
    if not outs:
        return np.zeros((0,), dtype=np.float32)
    shapes = {o.shape for o in outs}
    if len(shapes) > 1:
        raise SpecError(
            "the augmentation pipeline produces images of different sizes, which cannot be batched",
            path="augment",
            expected="one output size: end the list with Resize or a fixed-size crop",
            found=sorted(shapes)[:4],
        )
    return np.stack(outs)

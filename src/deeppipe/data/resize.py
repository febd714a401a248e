"""``data.resize: [H, W]``: images brought to another size when read, e.g. to the input size a
pretrained network was trained on (sklearn's 8x8 digits to Fashion-MNIST's 28x28).

Bilinear interpolation (antialiased when shrinking), per image and channel; values stay in the
inputs' range, and 8-bit pixels stay uint8. The resized set is what is stored, split, normalised and trained on, and the
model's input shape is the resized one.
"""

from __future__ import annotations

import numpy as np
import torch

from deeppipe.errors import SpecError


def resized_shape(shape: tuple[int, ...], size: list[int] | None, *, file: str | None = None) -> tuple[int, ...]:
    """The per-sample shape after ``data.resize`` (images only: (C, H, W))."""
    if size is None:
        return tuple(shape)
    if len(shape) != 3:
        raise SpecError("data.resize resizes images; these samples are not (channels, height, width)",
                        path="data.resize", file=file, expected="an image source (or no data.resize)",
                        found=f"samples of shape {list(shape)}")
    return (shape[0], int(size[0]), int(size[1]))


def resize_images(x: np.ndarray, size: list[int], batch: int = 1024) -> np.ndarray:
    """(N, C, H, W) images as (N, C, size[0], size[1]): float32, or uint8 pixels rounded back to
    uint8 (8-bit images stay one byte a pixel, scaled to [0, 1] on the device as before)."""
    h, w = int(size[0]), int(size[1])
    if tuple(x.shape[2:]) == (h, w):
        return x
    pixels = np.asarray(x).dtype == np.uint8
    shrink = h < x.shape[2] or w < x.shape[3]
    lo, hi = float(np.min(x)) if len(x) else 0.0, float(np.max(x)) if len(x) else 1.0
    out = np.empty((len(x), x.shape[1], h, w), dtype=np.uint8 if pixels else np.float32)
    with torch.inference_mode():
        for i in range(0, len(x), batch):
            t = torch.from_numpy(np.ascontiguousarray(x[i:i + batch], dtype=np.float32))
            r = torch.nn.functional.interpolate(t, size=(h, w), mode="bilinear", align_corners=False,
                                                antialias=shrink)
            r = r.clamp_(lo, hi)
            out[i:i + batch] = r.round_().numpy() if pixels else r.numpy()
    return out

"""Decoding one image file as every image reader does (in memory at ingest, or streamed by workers)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _full_scale(mode: str, largest: float) -> float:
    """The value meaning "white" in a wide grey image: 65535 for 16-bit, 1.0 for floats in [0, 1]."""
    if mode.startswith("I;16"):
        return 65535.0
    if mode == "F" and largest <= 1.0:
        return 1.0
    return 255.0 if mode == "F" and largest <= 255 else 65535.0 if largest <= 65535 else 2.0**32 - 1


def read_image(path: Path, size: tuple[int, int], channels: int) -> np.ndarray:
    """One image file at ``size`` with ``channels``: uint8 (C, H, W) for 8-bit files, float32 in
    [0, 1] for 16/32-bit grey ones (scaled by their own range). PIL's errors pass through."""
    from PIL import Image

    with Image.open(path) as im:
        if im.mode.startswith("I") or im.mode == "F":  # 16/32-bit grey: scale by its own range, not 8 bits
            wide = np.asarray(im, dtype=np.float64)
            top = _full_scale(im.mode, float(wide.max()) if wide.size else 0.0)
            grey = Image.fromarray((np.clip(wide, 0, None) / top).astype(np.float32), mode="F")
            arr = np.asarray(grey.resize((size[1], size[0]), Image.BILINEAR), dtype=np.float32)
            arr = np.clip(arr, 0.0, 1.0)
            return arr[None] if channels == 1 else np.repeat(arr[None], 3, axis=0)
        im = im.convert("L" if channels == 1 else "RGB").resize((size[1], size[0]), Image.BILINEAR)
        arr = np.asarray(im, dtype=np.uint8)  # 8-bit pixels: p / 255 in float (data.storage.to_float)
    return arr[None] if channels == 1 else np.ascontiguousarray(arr.transpose(2, 0, 1))

"""Real RGB images for the colour transforms: 32x32 patches of scikit-learn's bundled photographs."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture(scope="session")
def rgb_patches() -> np.ndarray:
    """64 real 32x32 RGB patches, (N, 3, 32, 32) float32 in [0, 1]."""
    import cv2
    from sklearn.datasets import load_sample_images

    out = []
    for img in load_sample_images().images:  # china.jpg, flower.jpg (427x640)
        small = cv2.resize(img, (256, 128), interpolation=cv2.INTER_AREA)
        for r in range(4):
            for c in range(8):
                out.append(small[r * 32 : (r + 1) * 32, c * 32 : (c + 1) * 32])
    return (np.stack(out).astype(np.float32) / 255.0).transpose(0, 3, 1, 2).copy()

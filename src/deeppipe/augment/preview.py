"""A grid PNG of original images and augmented views: see what augmentation does before training."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from deeppipe.augment.apply import augment_array
from deeppipe.augment.config import AugmentConfig
from deeppipe.augment.pipeline import check_images


def preview_grid(cfg: AugmentConfig | None, x: np.ndarray, *, n: int = 16, views: int = 3,
                 seed: int = 0) -> list[np.ndarray]:
    """1 + views rows of (n, C, H, W): the originals, then augmented views (by the training path).

    Rows are separate arrays because crops and resizes may change the size of the views.
    """
    check_images(x, "augment.train")
    rng = np.random.default_rng(seed)
    idx = np.sort(rng.choice(len(x), size=min(n, len(x)), replace=False))
    orig = np.asarray(x[idx], dtype=np.float32)
    rows = [orig]
    for v in range(views):
        rows.append(augment_array(cfg, orig, seed=seed, key=50_000 + v)
                    if cfg is not None and cfg.train else orig)
    return rows


def _as_image(img: np.ndarray) -> tuple[np.ndarray, str | None]:
    c = img.shape[0]
    if c == 1:
        return img[0], "gray"
    if c == 3:
        return img.transpose(1, 2, 0), None
    return img.mean(axis=0), "gray"


def preview_png(cfg: AugmentConfig | None, x: np.ndarray, n: int = 16, seed: int = 0, views: int = 3) -> bytes:
    """The grid of originals (top row) and augmented views as PNG bytes."""
    from matplotlib.figure import Figure

    from deeppipe.plotting import figure_png

    grid = preview_grid(cfg, x, n=n, views=views, seed=seed)
    rows, cols = len(grid), len(grid[0])
    fig = Figure(figsize=(max(4.0, 1.1 * cols), 1.2 * rows + 0.4))
    axes = fig.subplots(rows, cols, squeeze=False)
    for r in range(rows):
        for c in range(cols):
            ax = axes[r][c]
            img, cmap = _as_image(np.asarray(grid[r][c], dtype=np.float32))
            ax.imshow(np.clip(img, 0, 1) if cmap is None else img, cmap=cmap, vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            if c == 0:
                ax.set_ylabel("original" if r == 0 else f"view {r}", fontsize=8)
    fig.suptitle("augment.train: originals (top) vs augmented views", fontsize=9)
    return figure_png(fig, dpi=80)


def write_preview(cfg: AugmentConfig | None, x: np.ndarray, path: str | Path, n: int = 16,
                  seed: int = 0, views: int = 3) -> Path:
    """Write the grid as a PNG (atomically) and return its path."""
    from deeppipe.files import atomic_write

    return atomic_write(path, preview_png(cfg, x, n=n, seed=seed, views=views))

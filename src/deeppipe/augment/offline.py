"""Offline materialisation: K augmented copies of the training set, written once and reused.

The lead's node writes the result under data/04_feature/<experiment>/ as a DVC-tracked dataset, so
``dvc repro`` rebuilds it only when the augment section (or the data) changes. The copies are a
pure function of (data, augment section, seed).
"""

from __future__ import annotations

import numpy as np

from deeppipe.augment.config import AugmentConfig
from deeppipe.augment.source import augment_array
from deeppipe.errors import SpecError


def materialise(
    cfg: AugmentConfig, x: np.ndarray, y: np.ndarray, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """(x_aug, y_aug): the originals (unless include_original is false) then K augmented copies."""
    if cfg is None or cfg.offline is None:
        raise SpecError("materialise needs augment.offline", path="augment.offline",
                        expected="{copies: K}", found=None)
    if not cfg.train:
        raise SpecError("augment.offline needs an augment.train list to apply",
                        path="augment.train", expected="a non-empty list of steps", found=cfg.train)
    xs = [np.asarray(x, dtype=np.float32)] if cfg.offline.include_original else []
    for k in range(cfg.offline.copies):
        xs.append(augment_array(cfg, x, seed=seed, key=10_007 + k))
    ys = [np.asarray(y)] * len(xs)
    return np.concatenate(xs), np.concatenate(ys)

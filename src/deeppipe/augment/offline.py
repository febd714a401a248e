"""Offline materialisation: K augmented copies of the training set, written once and reused.

The augment stage's output is stored by the catalog (data/04_feature/<experiment>/) and tracked by DVC, so
``dvc repro`` rebuilds it only when the augment section (or the data) changes. The copies are a
pure function of (data, augment section, seed).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from deeppipe.augment.apply import augment_array
from deeppipe.augment.config import AugmentConfig, offline_enabled
from deeppipe.errors import SpecError

log = logging.getLogger(__name__)


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


def offline_set(spec: Any, samples: Any, split: Any) -> Any:
    """The augment stage: the training split plus K augmented copies, as Samples (None when the
    spec asks for no offline copies)."""
    from deeppipe.data.sources import Samples

    if not offline_enabled(spec.augment):
        return None
    tr = split.train
    x, y = materialise(spec.augment, samples.x[tr], samples.y[tr], spec.seed)
    log.info("augment.offline: %d training samples -> %d", len(tr), len(x))
    return Samples(x, y, samples.task, 0, {**samples.meta, "offline_copies": spec.augment.offline.copies})

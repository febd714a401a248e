"""Seeded, stratified hold-out splits and k-fold indices, saved as index arrays.

Saving indices (not copies) means every rerun, every tuning trial and every ensemble member
sees exactly the same samples, and DVC can tell when the split itself changed.
"""

from __future__ import annotations

import numpy as np
from sklearn.model_selection import KFold, StratifiedKFold, train_test_split

from deeppipe.data.task import Task
from deeppipe.errors import SpecError


def make_split(y: np.ndarray, task: Task, *, val: float, test: float | str, stratify: bool, seed: int,
               n_official_test: int = 0, folds: int = 0) -> dict[str, np.ndarray]:
    """Return {'train', 'val', 'test'} index arrays (plus 'fold_k' validation indices when folds > 0).

    Fractions are of the whole data set. ``test: official`` takes the source's own test split
    (the last ``n_official_test`` samples) and ``val`` is then a fraction of the rest.
    """
    n = len(y)
    strat = stratify and task.is_classification
    all_idx = np.arange(n)
    if test == "official":
        if n_official_test <= 0:
            raise SpecError("this source has no official test split", path="data.split.test",
                            expected="a fraction such as 0.2", found="official")
        test_idx = all_idx[n - n_official_test:]
        rest = all_idx[: n - n_official_test]
        val_frac = val
    else:
        test_frac = float(test)
        if test_frac > 0:
            rest, test_idx = _split(all_idx, y, test_frac, strat, seed)
        else:
            rest, test_idx = all_idx, all_idx[:0]
        val_frac = val / (1.0 - test_frac) if test_frac < 1 else 0.0
    if val_frac > 0:
        train_idx, val_idx = _split(rest, y, val_frac, strat, seed + 1)
    else:
        train_idx, val_idx = rest, rest[:0]
    out = {"train": np.sort(train_idx), "val": np.sort(val_idx), "test": np.sort(test_idx)}
    if folds:
        pool = np.sort(np.concatenate([train_idx, val_idx]))
        splitter = StratifiedKFold(folds, shuffle=True, random_state=seed) if strat else KFold(
            folds, shuffle=True, random_state=seed)
        for k, (_, fold_val) in enumerate(splitter.split(pool, y[pool] if strat else None)):
            out[f"fold_{k}"] = pool[fold_val]
    return out


def _split(idx: np.ndarray, y: np.ndarray, frac: float, stratify: bool, seed: int) -> tuple[np.ndarray, np.ndarray]:
    labels = y[idx] if stratify else None
    if stratify:
        counts = np.bincount(labels)
        counts = counts[counts > 0]
        n_hold = round(frac * len(idx))
        if counts.min() < 2 or n_hold < len(counts):
            labels = None  # too few samples per class to stratify; plain shuffle split
    a, b = train_test_split(idx, test_size=frac, random_state=seed, shuffle=True, stratify=labels)
    return a, b

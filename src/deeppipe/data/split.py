"""Seeded, stratified hold-out splits and k-fold indices, saved as index arrays.

Saving indices (not copies) means every rerun, every tuning trial and every ensemble member
sees exactly the same samples, and DVC can tell when the split itself changed.
"""

from __future__ import annotations

import numpy as np
from sklearn.model_selection import KFold, StratifiedKFold, train_test_split

from deeppipe.data.task import Task
from deeppipe.errors import SpecError


def time_gap(meta: dict) -> int | None:
    """For windows of a time series (``data.sources.series``): how many windows before each cut
    would have targets inside the next part (horizon - 1); None for samples in no order."""
    window = meta.get("window")
    return None if not window else int(window["horizon"]) - 1


def make_split(y: np.ndarray, task: Task, *, val: float, test: float | str, stratify: bool, seed: int,
               n_official_test: int = 0, folds: int = 0, time_gap: int | None = None) -> dict[str, np.ndarray]:
    """Return {'train', 'val', 'test'} index arrays (plus 'fold_k' validation indices when folds > 0).

    Fractions are of the whole data set. ``test: official`` takes the source's own test split
    (the last ``n_official_test`` samples) and ``val`` is then a fraction of the rest. With a
    ``time_gap`` the samples are windows in time order: cut by time, never shuffled
    (``time_split``).
    """
    if time_gap is not None:
        return time_split(len(y), val=val, test=test, gap=time_gap, folds=folds)
    n = len(y)
    strat = stratify and task.is_classification and np.ndim(y) == 1  # per-step labels (N, T): not stratified
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


def time_split(n: int, *, val: float, test: float | str, gap: int, folds: int = 0) -> dict[str, np.ndarray]:
    """Windows in time order: train first, then val, then test, each a contiguous block. The
    ``gap`` windows before each cut are dropped, so no training (or validation) target lies at or
    after the first target of the next part: a model never trains on the future it is scored on."""
    if test == "official" or folds:
        what, found = ("data.split.test", test) if test == "official" else ("data.split.folds", folds)
        raise SpecError("a time series has no official test split and no shuffled k-fold split (it would "
                        "train on the future)", path=what, expected="test: a fraction, folds: 0", found=found)
    n_test, n_val = round(float(test) * n), round(val * n)
    test_start, val_start = n - n_test, n - n_test - n_val
    idx = np.arange(n)
    train_end = val_start - gap if n_val else test_start - gap if n_test else n
    val_end = test_start - gap if n_test else n
    out = {"train": idx[:max(train_end, 0)], "val": idx[val_start:max(val_end, val_start)] if n_val else idx[:0],
           "test": idx[test_start:] if n_test else idx[:0]}
    if not len(out["train"]):
        raise SpecError(f"the time series gives {n} windows: none is left for training after val, test and "
                        f"the {gap}-window gaps before them", path="data.split",
                        expected="smaller val/test fractions, a shorter horizon or a longer series",
                        found={"val": val, "test": test})
    return out

"""Test-time augmentation: predict on the original and on each declared view, average the outputs.

``augment.tta`` lists the extra views; the original images are always the first view. A view is
one step (``HorizontalFlip``) or a list of steps applied together (``[HorizontalFlip, {Affine:
{scale: 1.1}}]``). Inside a view a step's ``p`` defaults to 1: a view is a transform you mean to
apply, not a coin flip. Random steps are seeded, so TTA predictions reproduce.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import albumentations as A
import numpy as np

from deeppipe.errors import join_path


def view_composes(views: list[Any] | None, *, file: str | None = None) -> list[A.Compose]:
    """One Compose per declared TTA view (validated, SpecError at ``augment.tta[i]...``)."""
    from deeppipe.augment.pipeline import build_compose, compose_from_steps, item_to_dict

    out = []
    for i, view in enumerate(views or []):
        path = join_path("augment", "tta", i)
        if isinstance(view, list):
            out.append(build_compose(view, path, file=file, default_p=1.0))
        else:  # one step: its errors read augment.tta[1].HorizontalFlip..., not ...[1][0]...
            out.append(compose_from_steps([item_to_dict(view, path, file=file, default_p=1.0)],
                                          path, file=file))
    return out


def tta_predict(
    predict_fn: Callable[[np.ndarray], np.ndarray],
    x: np.ndarray,
    cfg: Any,
    *,
    seed: int = 0,
) -> np.ndarray:
    """Mean of ``predict_fn`` over the original images and every ``augment.tta`` view.

    ``predict_fn`` maps (N, C, H, W) float32 to outputs (N, ...). The outputs are averaged as
    given: pass a function returning probabilities to average probabilities (the usual choice
    for classification), or logits to average logits.
    """
    from deeppipe.augment.transform import apply_compose

    views = view_composes(getattr(cfg, "tta", None) if cfg is not None else None)
    if views:
        from deeppipe.augment.pipeline import check_images

        check_images(x, "augment.tta")
    total = np.asarray(predict_fn(x), dtype=np.float64)
    for k, compose in enumerate(views):
        xv = apply_compose(compose, x, seed=seed * 7919 + k)
        total += np.asarray(predict_fn(xv), dtype=np.float64)
    return (total / (1 + len(views))).astype(np.float32)

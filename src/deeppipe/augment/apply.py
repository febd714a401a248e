"""Applying the declared pipelines to data: the training BatchSource, the val/test transforms,
whole arrays (offline copies, previews) and the shape a pipeline outputs.

Choice of path for the training data (``augment.backend``, default ``auto``):
1. no ``augment.train`` -> plain ``TensorBatches`` (no augmentation at all);
2. every step has a batch version -> ``TensorBatches`` with a device-side ``batch_transform``;
3. otherwise -> albumentations per sample in DataLoader workers; the reason is logged.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from deeppipe.augment.config import AugmentConfig
from deeppipe.data.batches import BatchSource, TensorBatches
from deeppipe.data.storage import as_batch_tensor
from deeppipe.errors import SpecError

# albumentations (and the modules built on it) is imported where a pipeline is declared: a run
# without `augment:` never pays its import (~0.4 s, with OpenCV's)
if TYPE_CHECKING:
    import albumentations as A

    from deeppipe.augment.device import DeviceAugment

logger = logging.getLogger("deeppipe.augment")


def _say(log: Callable[[str], Any] | None, msg: str) -> None:
    (log or logger.info)(msg)


def train_plan(cfg: AugmentConfig) -> tuple[A.Compose, DeviceAugment | None, str]:
    """(compose, device plan or None, why) following ``augment.backend``."""
    from deeppipe.augment.device import plan_device
    from deeppipe.augment.pipeline import build_compose

    compose = build_compose(cfg.train, "augment.train")
    if cfg.backend == "albumentations":
        return compose, None, "augment.backend is 'albumentations'"
    plan = plan_device(compose)
    if isinstance(plan, str):
        if cfg.backend == "device":
            raise SpecError("backend 'device' asked for, but this pipeline cannot run on whole "
                            "batches", path="augment.backend", found=plan)
        return compose, None, plan
    return compose, plan, "every step has a batch version"


def build_train_source(
    cfg: AugmentConfig | None,
    x: np.ndarray,
    y: np.ndarray,
    *,
    batch_size: int,
    device: torch.device,
    seed: int,
    num_workers: int | None = None,
    log: Callable[[str], Any] | None = None,
) -> BatchSource:
    """The training BatchSource, augmented as ``augment.train`` says (see the module docstring)."""
    xt = as_batch_tensor(x)  # uint8 images stay uint8 (converted per batch), streamed ones in their files
    yt = torch.as_tensor(np.ascontiguousarray(y))
    if cfg is None or not cfg.train:
        return TensorBatches(xt, yt, batch_size, shuffle=True, seed=seed, device=device)
    from deeppipe.augment.loader import AlbumentationsBatches
    from deeppipe.augment.pipeline import check_images

    check_images(x, "augment.train")
    if cfg.offline is not None and not cfg.offline.online:
        _say(log, "augment: training on the offline-materialised set; no online augmentation "
                  "(set augment.offline.online: true to add it)")
        return TensorBatches(xt, yt, batch_size, shuffle=True, seed=seed, device=device)
    compose, plan, why = train_plan(cfg)
    check_sizes(cfg, tuple(x.shape[1:]))
    if plan is not None:
        _say(log, f"augment: device-side batch path on {device} ({', '.join(plan.names)})")
        return TensorBatches(xt, yt, batch_size, shuffle=True, seed=seed, device=device,
                             batch_transform=plan)
    workers = cfg.num_workers if num_workers is None else num_workers
    source = AlbumentationsBatches(x, y, compose, batch_size, seed=seed, device=device,
                                   num_workers=workers)
    _say(log, f"augment: per-sample albumentations in {source.num_workers} worker process(es); "
              f"not on the device because {why}")
    return source


def augmented_shape(
    cfg: AugmentConfig | None, sample_shape: tuple[int, ...], split: str = "train"
) -> tuple[int, ...]:
    """The (C, H, W) a split's pipeline outputs for inputs of ``sample_shape`` (probed on a grey image).

    The model must be built for this shape when ``augment.train`` crops or resizes.
    """
    items = getattr(cfg, split, None) if cfg is not None else None
    if not items or len(sample_shape) != 3:
        return tuple(sample_shape)
    from deeppipe.augment.pipeline import build_compose
    from deeppipe.augment.transform import apply_compose

    probe = np.full((1, *sample_shape), 0.5, dtype=np.float32)
    if split == "train":
        compose, plan, _ = train_plan(cfg)
        if plan is not None:
            return tuple(plan(torch.from_numpy(probe), torch.Generator().manual_seed(0)).shape[1:])
    else:
        compose = build_compose(items, f"augment.{split}")
    return tuple(apply_compose(compose, probe).shape[1:])


def check_sizes(cfg: AugmentConfig, sample_shape: tuple[int, ...]) -> None:
    """Training and evaluation images must reach the model at one size."""
    train = augmented_shape(cfg, sample_shape, "train")
    for split in ("val", "test"):
        other = augmented_shape(cfg, sample_shape, split)
        if other != train:
            raise SpecError(
                f"augment.train turns {sample_shape} images into {train}, but {split} images reach "
                f"the model as {other}",
                path=f"augment.{split}",
                expected=f"a {split} list ending at {train} (e.g. the same Resize or CenterCrop), "
                "or a training pipeline that keeps the size",
                found=getattr(cfg, split, None),
            )


def build_eval_transform(
    cfg: AugmentConfig | None, split: str
) -> Callable[[np.ndarray], np.ndarray] | None:
    """The transform for ``split`` ('val' or 'test'), or None: those splits stay untouched by default.

    The returned callable maps (N, C, H, W) float32 to an augmented copy; it is seeded, so the
    evaluation of a saved model is repeatable even when the declared steps are random.
    """
    if split not in ("val", "test"):
        raise ValueError(f"split must be 'val' or 'test', not {split!r}")
    items = getattr(cfg, split, None) if cfg is not None else None
    if not items:
        return None
    from deeppipe.augment.pipeline import build_compose, check_images
    from deeppipe.augment.transform import apply_compose

    compose = build_compose(items, f"augment.{split}")

    def transform(x: np.ndarray, *, seed: int = 0) -> np.ndarray:
        check_images(x, f"augment.{split}")
        return apply_compose(compose, x, seed=seed, key=(1 if split == "val" else 2,))

    return transform


def eval_view(cfg: AugmentConfig | None, x: np.ndarray, split: str) -> np.ndarray:
    """Validation/test inputs as the model sees them: untouched unless ``augment.val`` /
    ``augment.test`` declare a pipeline."""
    if cfg is None or x.ndim != 4:
        return x
    transform = build_eval_transform(cfg, split)
    return transform(x) if transform is not None and len(x) else x


def eval_rows(cfg: AugmentConfig | None, x: Any, idx: Any, split: str) -> Any:
    """Rows ``idx`` of ``x`` as ``split`` sees them. Lazy images (uint8, or still in their files)
    stay lazy when no ``augment.<split>`` pipeline transforms them: evaluation then reads them a
    batch at a time (``training.inference.predict``) instead of holding a float32 copy of the split."""
    from deeppipe.data.storage import is_lazy, rows

    if not is_lazy(x):
        return eval_view(cfg, x[idx], split)
    transform = build_eval_transform(cfg, split)  # built once: None when the split is left untouched
    if transform is None:
        return rows(x, idx)
    part = x[idx]  # a declared pipeline transforms whole float arrays
    return transform(part) if len(part) else part


def augment_array(cfg: AugmentConfig, x: np.ndarray, *, seed: int, key: int = 0,
                  chunk: int = 512) -> np.ndarray:
    """Augment a whole array once with the training pipeline, by the path training would take."""
    from deeppipe.augment.loader import AlbumentationsBatches
    from deeppipe.augment.pipeline import check_images

    check_images(x, "augment.train")
    compose, plan, _ = train_plan(cfg)
    if not len(x):
        return x.copy()
    if plan is None:
        # The loader seeds each chunk by (seed, key, chunk index), so the result is the same
        # in-process (small arrays) or in worker processes (large ones, e.g. offline copies).
        workers = 0 if len(x) < 4 * chunk else None
        src = AlbumentationsBatches(x, np.zeros(len(x), np.int64), compose, chunk, seed=seed,
                                    shuffle=False, num_workers=workers)
        return np.concatenate([xb.numpy() for xb, _ in src.epoch(key)])
    gen = torch.Generator().manual_seed(int(seed) * 1_000_003 + key)
    with torch.no_grad():
        parts = [plan(torch.from_numpy(np.ascontiguousarray(x[i:i + chunk])), gen).numpy()
                 for i in range(0, len(x), chunk)]
    return np.concatenate(parts).astype(np.float32) if parts else x.copy()


def probe_views(cfg: AugmentConfig, sample_shape: tuple[int, ...]) -> None:
    """Every test-time view must turn a test image into an image of the test input's shape."""
    from deeppipe.augment.tta import view_composes

    if not cfg.tta:
        return
    expected = augmented_shape(cfg, sample_shape, "test")
    from deeppipe.augment.transform import apply_compose

    probe = np.full((1, *sample_shape), 0.5, dtype=np.float32)
    for k, compose in enumerate(view_composes(cfg.tta)):
        out = tuple(apply_compose(compose, probe).shape[1:])
        if out != expected:
            raise SpecError(f"this test-time view turns {sample_shape} images into {out}, the model takes {expected}",
                            path=f"augment.tta[{k}]", expected=f"a view that keeps the shape {expected}",
                            found=cfg.tta[k])

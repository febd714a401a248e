"""Augmentation: albumentations pipelines from YAML, fixed edge filters, device-side batch ops.

Modules, in the order data meets them: ``config`` (the ``augment:`` section), ``pipeline`` (YAML
lists <-> albumentations' Compose, the TRANSFORMS registry), ``filters`` (fixed edge kernels),
``device``/``device_ops`` (whole batches on the training device), ``loader`` (per-sample
albumentations in DataLoader workers), ``apply`` (training batches, val/test views, whole
arrays), ``tta`` (test-time views), ``offline`` (the augment stage), ``preview`` (the grid PNG).

Names are imported on first use, so reading ``augment.config`` does not load albumentations.
"""

from typing import Any

_LAZY = {
    "AugmentConfig": "config", "OfflineConfig": "config", "validate_augment": "config", "offline_enabled": "config",
    "augmented_shape": "apply", "build_eval_transform": "apply", "build_train_source": "apply", "eval_view": "apply",
    "materialise": "offline", "offline_set": "offline", "tta_predict": "tta", "write_preview": "preview",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"deeppipe.augment.{_LAZY[name]}"), name)
    raise AttributeError(name)


__all__ = sorted(_LAZY)

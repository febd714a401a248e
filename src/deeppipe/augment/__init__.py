"""Augmentation: albumentations pipelines from YAML, fixed edge filters, device-side batch ops.

The Kedro nodes use ``build_train_source`` (training batches), ``build_eval_transform`` (val/test,
untouched unless declared), ``tta_predict``, ``write_preview`` and ``materialise``.
"""

from deeppipe.augment.config import AugmentConfig, OfflineConfig, validate_augment
from deeppipe.augment.offline import materialise
from deeppipe.augment.preview import write_preview
from deeppipe.augment.source import augmented_shape, build_eval_transform, build_train_source
from deeppipe.augment.tta import tta_predict

__all__ = [
    "AugmentConfig",
    "OfflineConfig",
    "augmented_shape",
    "build_eval_transform",
    "build_train_source",
    "materialise",
    "tta_predict",
    "validate_augment",
    "write_preview",
]

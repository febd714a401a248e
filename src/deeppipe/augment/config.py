"""The ``augment:`` section: albumentations pipelines per split, in albumentations' own format.

Validation builds every declared pipeline once (through ``A.from_dict``), so an unknown transform
or argument stops the run at spec load with its YAML path, long before data is read.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, ValidationInfo, model_validator

from deeppipe.config import Strict, parse_section
from deeppipe.errors import SpecError


class OfflineConfig(Strict):
    """``augment.offline``: materialise K augmented copies of the training set once (DVC-tracked)."""

    copies: int = Field(ge=1, le=1000)
    include_original: bool = True  # the written set = originals + K augmented copies
    online: bool = False  # also augment the materialised set online while training


class AugmentConfig(Strict):
    """Per-split augmentation lists, test-time views, and how the training data is augmented."""

    train: list[Any] | None = None
    val: list[Any] | None = None
    test: list[Any] | None = None
    tta: list[Any] | None = None
    offline: OfflineConfig | None = None
    # auto: whole batches on the device when every step allows it, else per-sample albumentations
    backend: Literal["auto", "device", "albumentations"] = "auto"
    num_workers: int | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _build_all(self, info: ValidationInfo) -> AugmentConfig:
        # A SpecError passes through pydantic untouched; the spec file name can come in through
        # ``model_validate(raw, context={"file": ...})``.
        file = (info.context or {}).get("file") if isinstance(info.context, dict) else None
        validate_augment(self, file)
        return self


def validate_augment(cfg: AugmentConfig | dict | None, file: str | None = None) -> AugmentConfig | None:
    """Check every pipeline in an ``augment:`` section; raise SpecError at the offending path.

    Accepts the raw mapping too (returns the parsed config), so a spec loader can call it on
    ``spec["augment"]`` and get pydantic's errors translated into SpecErrors with the file name.
    """
    if cfg is None:
        return None
    if isinstance(cfg, dict):
        return parse_section(AugmentConfig, cfg, path="augment", file=file)
    from deeppipe.augment.pipeline import build_compose
    from deeppipe.augment.tta import view_composes

    try:
        for split in ("train", "val", "test"):
            build_compose(getattr(cfg, split), f"augment.{split}", file=file)
        view_composes(cfg.tta, file=file)
        if cfg.backend == "device" and cfg.train:
            from deeppipe.augment.device import plan_device

            plan = plan_device(build_compose(cfg.train, "augment.train"))
            if isinstance(plan, str):
                raise SpecError(
                    "backend 'device' asked for, but this pipeline cannot run on whole batches",
                    path="augment.backend", file=file,
                    expected="'auto' or 'albumentations', or only device-capable steps",
                    found=plan,
                )
    except SpecError as err:
        if file is not None and err.file is None:
            raise err.with_context(file=file) from None
        raise
    return cfg


def offline_enabled(augment_section: Any) -> bool:
    """Whether a spec materialises augmented copies (``augment.offline``), from the parsed section
    or the raw mapping: the pipeline registry, dvcgen and the train stage all decide with this."""
    if isinstance(augment_section, dict):
        return bool(augment_section.get("offline"))
    return augment_section is not None and getattr(augment_section, "offline", None) is not None

"""The ``augment:`` section: albumentations pipelines per split, in albumentations' own format.

Validation builds every declared pipeline once (through ``A.from_dict``), so an unknown transform
or argument stops the run at spec load with its YAML path, long before data is read.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, model_validator

from deeppipe.errors import SpecError, join_path


class OfflineConfig(BaseModel):
    """``augment.offline``: materialise K augmented copies of the training set once (DVC-tracked)."""

    model_config = ConfigDict(extra="forbid")

    copies: int = Field(ge=1, le=1000)
    include_original: bool = True  # the written set = originals + K augmented copies
    online: bool = False  # also augment the materialised set online while training


class AugmentConfig(BaseModel):
    """Per-split augmentation lists, test-time views, and how the training data is augmented."""

    model_config = ConfigDict(extra="forbid")

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
        return _parse(cfg, file)
    from deeppipe.augment.spec import build_compose
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


def _parse(raw: dict, file: str | None) -> AugmentConfig:
    from pydantic import ValidationError

    try:
        cfg = AugmentConfig.model_validate(raw, context={"file": file})
    except ValidationError as err:
        # an unknown key explains more than the "missing" error it causes next to it
        errors = sorted(err.errors(), key=lambda e: e.get("type") != "extra_forbidden")
        first = errors[0]
        loc = ["augment", *first.get("loc", ())]
        bad = loc[-1] if first.get("type") == "extra_forbidden" else None
        fields = AugmentConfig.model_fields if len(loc) == 2 else OfflineConfig.model_fields
        raise SpecError(
            first.get("msg", "invalid augment section"),
            path=join_path(*loc),
            file=file,
            expected="one of " + ", ".join(fields) if bad is not None else None,
            found=first.get("input", ...) if bad is None else bad,
            candidates=list(fields) if bad is not None else None,
        ) from None
    except SpecError as err:
        raise err.with_context(file=file) if file else err from None
    return cfg

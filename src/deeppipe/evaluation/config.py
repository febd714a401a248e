"""The ``evaluate:`` section: which metrics the test split is scored on, and which one decides
whether a new model beats the registry's champion."""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator

from deeppipe.config import Strict
from deeppipe.errors import join_path


class CrossValidation(Strict):
    """``evaluate.cv``: K-fold cross-validation of the experiment on its training split."""

    folds: int = Field(5, ge=2, le=20, description="K: the training split in K folds, each held out once")
    stratified: bool = Field(True, description="folds keep the class proportions (classification)")


class EvaluateConfig(Strict):
    # None: every default metric that fits the task; items are names or {name: {arguments}}
    metrics: list[str | dict[str, Any]] | None = Field(
        None, description="metric names (accuracy, f1_macro, rmse, ...) or {top_k_accuracy: {k: 3}}")
    selection_metric: str | None = Field(
        None, description="the metric the champion alias follows (default: accuracy, or rmse for regression)")
    cv: CrossValidation | None = Field(None, description="K-fold cross-validation: every metric's mean and spread")

    @field_validator("metrics")
    @classmethod
    def _known(cls, items: list[Any] | None) -> list[Any] | None:
        from deeppipe.evaluation.metrics import parse_choice

        for i, item in enumerate(items or []):
            parse_choice(item, path=join_path("evaluate.metrics", i))
        return items

    @field_validator("selection_metric")
    @classmethod
    def _selectable(cls, name: str | None) -> str | None:
        if name is not None:
            from deeppipe.evaluation.metrics import parse_choice

            choice = parse_choice(name, path="evaluate.selection_metric")
            if not choice.entry.scalar:
                from deeppipe.errors import SpecError

                raise SpecError("the selection metric must be a number", path="evaluate.selection_metric",
                                expected="a scalar metric such as accuracy or rmse", found=name)
        return name

    def choices(self) -> list[Any] | None:
        from deeppipe.evaluation.metrics import parse_choice

        if self.metrics is None:
            return None
        return [parse_choice(item, path=join_path("evaluate.metrics", i)) for i, item in enumerate(self.metrics)]


def check_against(cfg: EvaluateConfig, task: Any, *, file: str | None = None, n_train: int | None = None) -> None:
    """Every metric (and the selection metric) must fit the task the data defines; cross-validation
    needs at least a sample per fold."""
    from deeppipe.evaluation.metrics import check_fits, parse_choice

    if cfg.cv is not None and n_train is not None and n_train < 2 * cfg.cv.folds:
        from deeppipe.errors import SpecError

        raise SpecError(f"{n_train} training samples are too few for {cfg.cv.folds}-fold cross-validation",
                        path="evaluate.cv.folds", file=file, expected=f"at most {n_train // 2} folds",
                        found=cfg.cv.folds)

    for i, choice in enumerate(cfg.choices() or []):
        check_fits(choice, task, path=join_path("evaluate.metrics", i), file=file)
    if cfg.selection_metric is not None:
        check_fits(parse_choice(cfg.selection_metric, path="evaluate.selection_metric"), task,
                   path="evaluate.selection_metric", file=file)

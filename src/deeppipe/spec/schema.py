"""The experiment spec: one pydantic model per section, extra keys forbidden everywhere.

Sections owned by a stage live with that stage (``training.config``, ``augment.config``);
the ``model:`` section is free-form here because its valid keys depend on the layers it
names: the model builder validates it with the same path-aware errors.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from deeppipe.augment.config import AugmentConfig
from deeppipe.training.config import TrainConfig

SKLEARN_SETS = ("digits", "iris", "wine", "breast_cancer", "diabetes")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SklearnSource(_Strict):
    """A data set bundled inside the scikit-learn wheel (no download)."""

    type: Literal["sklearn"]
    name: Literal["digits", "iris", "wine", "breast_cancer", "diabetes"]


class IdxSource(_Strict):
    """MNIST-format files (``train-images-idx3-ubyte[.gz]`` ...): MNIST, Fashion-MNIST, KMNIST."""

    type: Literal["idx"]
    path: str
    class_names: list[str] | None = None


class ImageFolderSource(_Strict):
    """One sub-folder per class holding PNG/JPEG files of any size."""

    type: Literal["image_folder"]
    path: str
    size: tuple[int, int] = (32, 32)
    channels: Literal[1, 3] = 3


class CsvSource(_Strict):
    """Feature columns and one target column; categorical targets become class indices."""

    type: Literal["csv"]
    path: str
    target: str
    features: list[str] | None = None  # None: every column except the target
    task: Literal["auto", "classification", "regression"] = "auto"


class NpzSource(_Strict):
    """A NumPy ``.npz`` with an input array and a target array (and optionally an official test split)."""

    type: Literal["npz"]
    path: str
    x: str = "x"
    y: str = "y"
    x_test: str | None = None
    y_test: str | None = None
    task: Literal["auto", "classification", "regression"] = "auto"
    class_names: list[str] | None = None


Source = Annotated[
    SklearnSource | IdxSource | ImageFolderSource | CsvSource | NpzSource,
    Field(discriminator="type"),
]


class SplitConfig(_Strict):
    """Hold-out fractions (of the whole set) or the source's official test split."""

    val: float = Field(0.1, ge=0.0, lt=1.0)
    test: float | Literal["official"] = 0.2
    stratify: bool = True
    folds: int = Field(0, ge=0, description="k-fold indices saved for later use (0: none)")

    @model_validator(mode="after")
    def _fractions(self) -> SplitConfig:
        test = 0.0 if self.test == "official" else float(self.test)
        if not 0.0 <= test < 1.0:
            raise ValueError(f"test must be in [0, 1) or 'official', got {self.test}")
        if self.val + test >= 1.0:
            raise ValueError(f"val + test must leave training data: {self.val} + {test} >= 1")
        if self.folds == 1:
            raise ValueError("folds must be 0 (none) or at least 2")
        return self


class DataConfig(_Strict):
    source: Source
    split: SplitConfig = Field(default_factory=SplitConfig)
    on_error: Literal["raise", "skip"] = "raise"
    normalize: bool = True
    limit: int | None = Field(None, gt=0, description="use only the first N samples (quick tries)")


CLASSIFICATION_METRICS = (
    "accuracy",
    "balanced_accuracy",
    "precision_macro",
    "recall_macro",
    "f1_macro",
    "f1_micro",
    "f1_weighted",
    "log_loss",
    "roc_auc",
    "top5_accuracy",
    "confusion_matrix",
    "per_class",
)
REGRESSION_METRICS = ("mae", "rmse", "mse", "r2")


class EvaluateConfig(_Strict):
    metrics: list[str] | None = None  # None: every metric that fits the task
    selection_metric: str | None = None  # None: accuracy (classification) or rmse (regression)


class RegisterConfig(_Strict):
    enabled: bool = True
    name: str | None = None  # None: the experiment's name
    alias: str = "champion"


warnings.filterwarnings("ignore", message='Field name "register"', category=UserWarning)


class ExperimentSpec(_Strict):
    description: str = ""
    seed: int = 42
    imports: list[str] = Field(default_factory=list)
    data: DataConfig
    augment: AugmentConfig | None = None
    model: dict[str, Any]
    train: TrainConfig = Field(default_factory=TrainConfig)
    evaluate: EvaluateConfig = Field(default_factory=EvaluateConfig)
    register: RegisterConfig = Field(default_factory=RegisterConfig)

    def data_paths(self) -> list[Path]:
        path = getattr(self.data.source, "path", None)
        return [Path(path)] if path else []


SECTIONS = tuple(ExperimentSpec.model_fields)

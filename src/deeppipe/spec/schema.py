"""The experiment spec: the sections of every stage, put together. Extra keys are refused everywhere.

Each section is declared by the stage that reads it:

==========  =========================================
data:       ``deeppipe.data.config.DataConfig``
augment:    ``deeppipe.augment.config.AugmentConfig``
model:      ``deeppipe.models.config.ModelConfig``
train:      ``deeppipe.training.config.TrainConfig``
evaluate:   ``deeppipe.evaluation.config.EvaluateConfig``
ensemble:   ``deeppipe.ensemble.config.EnsembleConfig``
register:   ``deeppipe.tracking.config.RegisterConfig``
tune:       ``deeppipe.tuning.config.TuneConfig``
==========  =========================================
"""

from __future__ import annotations

import warnings
from typing import Any

from pydantic import Field

from deeppipe.augment.config import AugmentConfig
from deeppipe.config import Strict
from deeppipe.data.config import DataConfig
from deeppipe.ensemble.config import EnsembleConfig
from deeppipe.evaluation.config import EvaluateConfig
from deeppipe.models.config import ModelConfig, model_dict
from deeppipe.tracking.config import RegisterConfig
from deeppipe.training.config import TrainConfig
from deeppipe.tuning.config import TuneConfig

warnings.filterwarnings("ignore", message='Field name "register"', category=UserWarning)

class ExperimentSpec(Strict):
    description: str = ""
    seed: int = Field(42, ge=0, lt=2**32, description="seeds Python, NumPy, torch, the split and the shuffling")
    imports: list[str] = Field(default_factory=list,
                               description="modules whose decorators register custom layers, losses, metrics")
    data: DataConfig
    augment: AugmentConfig | None = None
    model: ModelConfig
    train: TrainConfig = Field(default_factory=TrainConfig)
    evaluate: EvaluateConfig = Field(default_factory=EvaluateConfig)
    ensemble: EnsembleConfig | None = Field(None, description="members and how they are combined (deeppipe.ensemble)")
    register: RegisterConfig = Field(default_factory=RegisterConfig)
    tune: TuneConfig | None = None

    def to_dict(self, *, exclude_none: bool = False) -> dict[str, Any]:
        """The resolved spec as plain data: every section with its defaults filled in, except the
        model, which stays exactly as written (a layer's defaults belong to torch, not to us)."""
        out = self.model_dump(mode="json", by_alias=True, exclude_none=exclude_none)
        out["model"] = model_dict(self.model)
        return out

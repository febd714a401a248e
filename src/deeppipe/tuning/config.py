"""The ``tune:`` section: the search space as data, the objective(s), the budget, Optuna's sampler
and pruner by name, where the study lives and how many processes share it.

::

    tune:
      objective: val/accuracy            # direction from the metrics registry
      n_trials: 30
      sampler: {name: tpe, multivariate: true}
      pruner: {name: median, n_warmup_steps: 2}
      epochs: 5                          # trials train shorter than the final model
      space:
        train.optimizer.lr: {float: [1.0e-4, 1.0e-1], log: true}
        train.optimizer.name: {choices: [adam, sgd]}
        train.optimizer.momentum: {float: [0.0, 0.99], when: {train.optimizer.name: sgd}}
        model.layers[7].Dropout.p: {float: [0.1, 0.5], step: 0.1}

Every key path, range and name is checked against the spec by ``deeppipe.tuning.checks`` at
``deeppipe validate``; this module checks the section on its own.
"""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from deeppipe.config import Component, Strict

# The objectives that are a property of the trained model rather than a metric of its
# predictions; smaller is better for both (they are not in the metrics registry because no
# evaluation computes them from predictions).
MODEL_COSTS = {"params": "trainable parameters of the network",
               "latency_ms": "median milliseconds to predict one sample (batch of 1, on the CPU)"}
Scalar = str | int | float | bool | None


class Param(Strict):
    """One searched value: a ``float`` or ``int`` range (linear or ``log``, optional ``step``) or
    categorical ``choices``; ``when`` searches it only while other values are as given."""

    float_: tuple[float, float] | None = Field(None, alias="float", description="[low, high]")
    int_: tuple[int, int] | None = Field(None, alias="int", description="[low, high], both included")
    choices: list[Scalar] | None = Field(None, description="categorical values (names, numbers, booleans)")
    log: bool = Field(False, description="sample the range on a log scale")
    step: float | None = Field(None, gt=0, description="the grid of a range: low, low + step, ...")
    when: dict[str, Scalar | list[Scalar]] = Field(
        default_factory=dict, description="{key path: value or [values]}: searched only when all hold")

    @model_validator(mode="after")
    def _one_kind(self) -> Param:
        kinds = [k for k, v in (("float", self.float_), ("int", self.int_), ("choices", self.choices)) if v is not None]
        if len(kinds) != 1:
            raise ValueError(f"give exactly one of float: [low, high], int: [low, high] or choices: [...]; found "
                             f"{kinds or 'none'}")
        if self.choices is not None:
            if not self.choices:
                raise ValueError("choices must list at least one value")
            if len({repr(c) for c in self.choices}) != len(self.choices):
                raise ValueError(f"choices repeat a value: {self.choices}")
            if self.log or self.step is not None:
                raise ValueError("log and step apply to a float or int range, not to choices")
            return self
        low, high = self.float_ if self.float_ is not None else self.int_  # type: ignore[misc]
        if not (math.isfinite(low) and math.isfinite(high)) or low > high:
            raise ValueError(f"a range is [low, high] with low <= high, both finite; found [{low}, {high}]")
        if self.log and low <= 0:
            raise ValueError(f"a log range needs low > 0; found [{low}, {high}]")
        if self.log and self.step is not None:
            raise ValueError("a range is either log or stepped (Optuna samples one or the other)")
        if self.int_ is not None and self.step is not None and self.step != int(self.step):
            raise ValueError(f"the step of an int range is a whole number; found {self.step}")
        if self.step is not None and self.step > high - low and high > low:
            raise ValueError(f"step {self.step} is wider than the range [{low}, {high}]")
        return self

    @property
    def kind(self) -> str:
        return "choices" if self.choices is not None else ("int" if self.int_ is not None else "float")

    @property
    def bounds(self) -> tuple[float, float]:
        return self.float_ if self.float_ is not None else self.int_  # type: ignore[return-value]

    def count(self) -> int | None:
        """How many values the parameter can take (None: a continuous range)."""
        if self.choices is not None:
            return len(self.choices)
        low, high = self.bounds
        if self.int_ is None and self.step is None:
            return None
        step = self.step or 1
        return math.floor((high - low) / step + 1e-9) + 1

    def points(self) -> list[Any] | None:
        """Every value the parameter can take, when finitely many (a grid sampler's axis; its size
        is checked with ``count`` before this lists it)."""
        if self.choices is not None:
            return list(self.choices)
        n = self.count()
        if n is None:
            return None
        return [self._point(i) for i in range(n)]

    def _point(self, i: int) -> Any:
        low = self.bounds[0]
        if self.int_ is not None:
            return int(low) + i * int(self.step or 1)
        return min(round(low + i * (self.step or 0), 12), self.bounds[1])

    def extremes(self) -> list[Any]:
        """The values validation tries: both ends of a range (the last point on its step), every choice."""
        if self.choices is not None:
            return list(self.choices)
        n = self.count()
        if n is not None:
            return [self._point(0), self._point(n - 1)] if n > 1 else [self._point(0)]
        low, high = self.bounds
        return [low, high] if high > low else [low]


class Objective(Strict):
    """A quantity to optimise: ``val/<metric>`` (a registered metric, on the validation split) or a
    model cost (``params``, ``latency_ms``); its direction comes from the registry unless given."""

    metric: str
    direction: Literal["auto", "min", "max"] = "auto"

    @model_validator(mode="before")
    @classmethod
    def _bare(cls, data: Any) -> Any:
        return {"metric": data} if isinstance(data, str) else data


class Pick(Strict):
    """Which trial of a Pareto front the train stage uses: among the front's trials within
    ``tolerance`` of the best value of ``objective``, the one best on the next objectives in order
    (``{objective: val/accuracy, tolerance: 0.01}`` = the smallest model within 1 point of the best)."""

    objective: str | None = Field(None, description="default: the first objective")
    tolerance: float = Field(0.0, ge=0, description="absolute slack on that objective")

    @model_validator(mode="before")
    @classmethod
    def _bare(cls, data: Any) -> Any:
        return {"objective": data} if isinstance(data, str) else data


class CvConfig(Strict):
    """k-fold cross-validation as the objective: each trial trains once per fold of train + val
    (the test split is never used); its value is the mean over the folds."""

    folds: int = Field(5, ge=2, le=50)
    stratified: bool = True


class SamplerConfig(Component):
    name: str = "tpe"


class PrunerConfig(Component):
    name: str = "median"


class TuneConfig(Strict):
    """Hyperparameter search with Optuna (``deeppipe.tuning``)."""

    space: dict[str, Param] = Field(..., description="key path -> searched values")
    objective: list[Objective] = Field(default_factory=lambda: [Objective(metric="val/loss")],
                                       description="one objective, or several (a Pareto front)")
    pick: Pick | None = Field(None, description="multi-objective: the front's trial to train")
    n_trials: int | None = Field(None, ge=1, le=100_000, description="the study's budget (all workers); "
                                 "default 20, or the grid's size, unless a timeout is given")
    timeout: float | None = Field(None, gt=0, description="seconds this search runs at most")
    sampler: SamplerConfig = Field(default_factory=SamplerConfig)
    pruner: PrunerConfig = Field(default_factory=PrunerConfig)
    seed: int | None = Field(None, ge=0, lt=2**32, description="the sampler's seed (default: the spec's)")
    epochs: int | None = Field(None, ge=1, description="train.epochs of each trial (default: train.epochs)")
    workers: int = Field(1, ge=1, le=64, description="local processes searching this study together")
    storage: str | None = Field(None, description="an Optuna storage URL (postgresql://...); default: a "
                                "journal file under the experiment's model folder")
    study_name: str | None = Field(None, min_length=1, max_length=200,
                                   description="default: the experiment's name and its spec's hash")
    keep_top: int = Field(0, ge=0, le=1000, description="keep the models of the best K trials")
    cv: CvConfig | None = None
    retries: int = Field(1, ge=0, le=10, description="times a trial killed mid-way is run again")
    heartbeat: int = Field(30, ge=1, le=3600, description="seconds between a trial's heartbeats "
                           "(database storages; a trial silent for 2x is failed and retried)")

    @field_validator("objective", mode="before")
    @classmethod
    def _listed(cls, value: Any) -> Any:
        return value if isinstance(value, list) else [value]

    @field_validator("sampler", "pruner", mode="before")
    @classmethod
    def _bare_name(cls, value: Any) -> Any:
        return {"name": value} if isinstance(value, str) else value

    @model_validator(mode="after")
    def _consistent(self) -> TuneConfig:
        if not self.space:
            raise ValueError("space names at least one key path to search")
        if not self.objective:
            raise ValueError("objective names at least one quantity")
        names = [o.metric for o in self.objective]
        if len(set(names)) != len(names):
            raise ValueError(f"an objective is listed twice: {names}")
        if self.pick is not None and self.pick.objective is not None and self.pick.objective not in names:
            raise ValueError(f"pick.objective '{self.pick.objective}' is not one of the objectives {names}")
        return self

    @property
    def multi(self) -> bool:
        return len(self.objective) > 1

    def budget(self, grid_size: int | None = None) -> int | None:
        """Trials the study runs in all: n_trials, else the grid's size, else 20 unless a timeout rules."""
        if self.n_trials is not None:
            return min(self.n_trials, grid_size) if grid_size else self.n_trials
        if grid_size:
            return grid_size
        return None if self.timeout is not None else 20

"""The ``ensemble:`` section: how members are combined (``method``, a registered ensemble method
with its own arguments) and the members, each declared once.

A member entry is a variant of the experiment itself: the same data and split, with what the entry
changes. Model keys (``zoo``, ``layers``, ``blocks`` ...) replace the ``model:`` section; ``seed``
the seed; ``params`` sets any spec key by its dotted path (``train.optimizer.lr: 0.01``);
``experiment: other`` takes the model, training and augmentation of ``pipelines/other.yml``.
Three entries stand for several members: ``{bagging: {n: 5}}`` (each on its own bootstrap
sample), ``{snapshots: 5}`` (checkpoints of one cyclic-schedule run) and ``{from_trials: top5}``
(the best tuning trials)::

    ensemble:
      method: soft_voting                    # or {name: stacking, folds: 5, meta_model: logistic_regression}
      members:
        - {seed: 1}
        - {zoo: resnet20}
        - {layers: [{Flatten: {}}, {Linear: {out_features: 10}}]}
        - {bagging: {n: 5}}
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import Field, field_validator, model_validator

from deeppipe.config import Component, Strict
from deeppipe.errors import SpecError, join_path

# the keys of a member entry that are not model keys; every other key belongs to its model
MEMBER_KEYS = ("name", "seed", "params", "experiment", "from_trials", "bagging", "snapshots")
TRIALS = re.compile(r"^top(\d+)$")


class Bagging(Strict):
    n: int = Field(ge=2, le=100, description="how many members, each on its own bootstrap sample")


class MemberConfig(Strict):
    """One entry of ``ensemble.members`` (see the module docstring)."""

    name: str | None = Field(None, description="the member's label in the report (default: member_<i>)")
    seed: int | None = Field(None, ge=0, lt=2**32, description="the member's seed (default: the experiment's + i)")
    params: dict[str, Any] = Field(default_factory=dict, description="spec keys by dotted path: {train.epochs: 3}")
    experiment: str | None = Field(None, description="take model, train and augment from pipelines/<name>.yml")
    from_trials: str | None = Field(None, description="topK: the K best tuning trials' models")
    bagging: Bagging | None = None
    snapshots: int | None = Field(None, ge=2, le=50, description="checkpoints of one cyclic-schedule run")
    model: dict[str, Any] | None = Field(None, description="the member's model section (or its keys inline)")

    @model_validator(mode="before")
    @classmethod
    def _inline_model(cls, data: Any) -> Any:
        """``{zoo: resnet20}`` and ``{layers: [...]}`` are the member's model, written inline."""
        from deeppipe.models.config import MODEL_KEYS, ZOO_OVERRIDES

        if not isinstance(data, dict):
            return data
        model_keys = {"zoo", *MODEL_KEYS, *ZOO_OVERRIDES}
        inline = {k: v for k, v in data.items() if k in model_keys}
        if not inline:
            return data
        return {**{k: v for k, v in data.items() if k not in model_keys}, "model": inline}

    @field_validator("from_trials")
    @classmethod
    def _top_k(cls, value: str | None) -> str | None:
        if value is not None and not (TRIALS.match(value) and int(TRIALS.match(value).group(1)) >= 1):
            raise ValueError("from_trials names the best K trials as topK: top3, top5 ...")
        return value

    @model_validator(mode="after")
    def _one_source(self) -> MemberConfig:
        many = [k for k in ("from_trials", "bagging", "snapshots", "experiment") if getattr(self, k) is not None]
        if len(many) > 1:
            raise ValueError(f"a member entry takes one of from_trials, bagging, snapshots, experiment; found "
                             f"{', '.join(many)}")
        if self.from_trials is not None and (self.model is not None or self.params or self.seed is not None):
            raise ValueError("members from tuning trials are the trials' own models: {from_trials: topK} takes "
                             "no model, params or seed")
        return self

    @property
    def count(self) -> int | None:
        """How many members the entry stands for (None: the tuning study decides, at most K)."""
        if self.bagging is not None:
            return self.bagging.n
        if self.snapshots is not None:
            return self.snapshots
        if self.from_trials is not None:
            return int(TRIALS.match(self.from_trials).group(1))
        return 1


class MethodConfig(Component):
    """``soft_voting`` or ``{name: stacking, folds: 5}``: a method of ``deeppipe.registry.ENSEMBLES``
    and its own arguments (checked against its signature)."""


class EnsembleConfig(Strict):
    method: MethodConfig = Field(default_factory=lambda: MethodConfig(name="soft_voting"),
                                 description="hard_voting, soft_voting, averaging, weighted_averaging, "
                                             "stacking, samme (with their arguments)")
    members: list[MemberConfig] = Field(description="the members, each declared once")

    @field_validator("members", mode="before")
    @classmethod
    def _one_entry(cls, value: Any) -> Any:
        return [value] if isinstance(value, dict) else value

    @field_validator("method")
    @classmethod
    def _registered(cls, method: MethodConfig) -> MethodConfig:
        from deeppipe.registry import ENSEMBLES

        ENSEMBLES.build(method.name, method.kwargs(), path="ensemble.method", name_path="ensemble.method.name")
        return method

    @model_validator(mode="after")
    def _enough(self) -> EnsembleConfig:
        from deeppipe.registry import ENSEMBLES

        entry = ENSEMBLES.entry(self.method.name)
        n = sum(m.count or 0 for m in self.members)
        if not self.members:
            raise SpecError("an ensemble needs members", path="ensemble.members", expected="a list of members",
                            found=[])
        if entry.sequential:
            if any(m.count != 1 or m.from_trials for m in self.members):
                raise SpecError(f"'{entry.name}' trains its own members round by round: list base learners "
                                "(model variants), not bagging, snapshots or trials", path="ensemble.members",
                                expected="entries like {seed: 1} or {zoo: resnet20}",
                                found=[m.model_dump(exclude_none=True) for m in self.members])
        elif n < 2:
            raise SpecError("an ensemble combines at least two members", path="ensemble.members",
                            expected="two or more members (or {bagging: {n: 5}})", found=n)
        return self

    def build_method(self, *, file: str | None = None) -> Any:
        from deeppipe.registry import ENSEMBLES

        return ENSEMBLES.build(self.method.name, self.method.kwargs(), path="ensemble.method", file=file,
                               name_path="ensemble.method.name")


def member_path(index: int) -> str:
    return join_path("ensemble.members", index)

"""Optuna's samplers and pruners under the names a ``tune:`` section uses (fills
``registry.SAMPLERS`` and ``registry.PRUNERS``), and the two factories that build them.

The registered objects are Optuna's own classes, so a section's arguments are checked against
their real signatures (``tune.sampler: {name: tpe, n_startup_trials: 5}``). Arguments that take
Python callables or objects (constraints, mutations, an independent sampler) are not offered:
nothing in a YAML file is evaluated.
"""

from __future__ import annotations

import warnings
from typing import Any

import optuna

from deeppipe.registry import PRUNERS, SAMPLERS

# keyword arguments that need Python objects, which a YAML file cannot give
_OBJECT_ARGS = ("independent_sampler", "constraints_func", "mutation", "crossover", "source_trials",
                "elite_population_selection_strategy", "child_generation_strategy", "after_trial_strategy",
                "gamma", "weights", "categorical_distance_func")
_S, _P = optuna.samplers, optuna.pruners

SAMPLERS.register("tpe", doc="Tree-structured Parzen Estimator (Optuna's default)", multi_objective=True)(
    _S.TPESampler)
SAMPLERS.register("random", doc="independent uniform sampling", multi_objective=True)(_S.RandomSampler)
SAMPLERS.register("grid", doc="every combination of the space's points, each once", multi_objective=True,
                  grid=True)(_S.GridSampler)
SAMPLERS.register("cmaes", doc="CMA-ES (continuous spaces; categorical values fall back to random)")(
    _S.CmaEsSampler)
SAMPLERS.register("gp", doc="Gaussian-process Bayesian optimisation", multi_objective=True)(_S.GPSampler)
SAMPLERS.register("qmc", doc="quasi-Monte Carlo (Sobol / Halton) sequences", multi_objective=True)(_S.QMCSampler)
SAMPLERS.register("nsgaii", aliases=("nsga2",), doc="NSGA-II genetic algorithm (multi-objective)",
                  multi_objective=True)(_S.NSGAIISampler)

PRUNERS.register("median", doc="prune below the median of earlier trials at the same epoch")(_P.MedianPruner)
PRUNERS.register("percentile", doc="prune outside the given percentile of earlier trials")(_P.PercentilePruner)
PRUNERS.register("successive_halving", aliases=("asha",), doc="asynchronous successive halving",
                 resource="min_resource")(_P.SuccessiveHalvingPruner)
PRUNERS.register("hyperband", doc="Hyperband (several successive-halving brackets)",
                 resource="max_resource")(_P.HyperbandPruner)
PRUNERS.register("none", aliases=("nop",), doc="never prune")(_P.NopPruner)


def build_sampler(name: str, kwargs: dict[str, Any], *, seed: int, grid: dict[str, list[Any]] | None = None,
                  file: str | None = None) -> optuna.samplers.BaseSampler:
    """The sampler a section names, with deeppipe's seed (and the space's grid for ``grid``)."""
    entry = SAMPLERS.entry(name, path="tune.sampler.name", file=file)
    fixed: dict[str, Any] = {"seed": seed}
    if entry.grid:
        fixed["search_space"] = grid or {}
    with warnings.catch_warnings():  # QMCSampler / GPSampler are "experimental" in some versions
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return SAMPLERS.build(name, kwargs, path="tune.sampler", file=file, fixed=fixed, skip=_OBJECT_ARGS)


def build_pruner(name: str, kwargs: dict[str, Any], *, epochs: int, file: str | None = None
                 ) -> optuna.pruners.BasePruner:
    """The pruner a section names; Hyperband's ``max_resource`` defaults to a trial's epochs (its
    steps are epochs), rather than Optuna's guess from the first trial that finishes."""
    entry = PRUNERS.entry(name, path="tune.pruner.name", file=file)
    kwargs = dict(kwargs)
    if entry.resource == "max_resource":
        kwargs.setdefault("max_resource", epochs)
    return PRUNERS.build(name, kwargs, path="tune.pruner", file=file)

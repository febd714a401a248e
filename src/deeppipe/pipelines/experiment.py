"""One experiment file -> one Kedro pipeline, with a node per stage tagged by its stage name."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kedro.pipeline import Node, Pipeline, pipeline

from deeppipe.ensemble.plan import EnsembleShape
from deeppipe.pipelines import nodes

STAGES = ("ingest", "split", "augment", "tune", "train", "evaluate", "register")
# The run's --params, put in the catalog by deeppipe.hooks. Not Kedro's "parameters", which
# kedro-mlflow would log a second time beside the spec's own params (``parameters.train.epochs``).
OVERRIDES = "overrides"


def _bind(func: Callable[..., Any], **kwargs: Any) -> Callable[..., Any]:
    bound = functools.partial(func, **kwargs)
    functools.update_wrapper(bound, func)
    return bound


def _train_nodes(train_inputs: list[str], ensemble: EnsembleShape | None) -> list[Node]:
    """The train stage: one node, or for an ensemble one node per member (``kedro run --nodes
    <name>.member_2`` retrains one; a parallel runner trains several at once; a snapshot cycle
    reads the previous cycle's member) and one that combines them; boosting's members depend on
    each other: one node trains them all."""
    outputs = ["model", "history", "train_plots"]
    if ensemble is None:
        return [Node(nodes.train, train_inputs, outputs, name="train", tags=["train"])]
    if ensemble.sequential:
        return [Node(nodes.fit_ensemble, ["spec", "dataset", "split"], outputs, name="ensemble", tags=["train"])]
    members = [Node(_bind(nodes.train_member, index=i), ["spec", "dataset", "split"] + (
        [f"member_{after}"] if after is not None else []), f"member_{i}", name=f"member_{i}", tags=["train", "member"])
        for i, after in enumerate(ensemble.after)]
    names = [f"member_{i}" for i in range(ensemble.count)]
    return [*members, Node(nodes.combine_members, ["spec", "dataset", "split", *names], outputs, name="ensemble",
                           tags=["train"])]


def _with_tuning(template: Pipeline) -> Pipeline:
    """The tune stage after the data stages; every later node reads the spec with the winner's
    values (``tuned_spec``, from best_params.yml), so ``--tags train`` alone trains the winner."""
    data = {"resolve_spec", "ingest", "split", "augment"}
    head = Pipeline([n for n in template.nodes if n.name in data])
    rest = Pipeline([n for n in template.nodes if n.name not in data])
    search = Pipeline([
        Node(nodes.tune, ["spec", "dataset", "split", "study"], ["best_params", "tune_plots"], name="tune", tags=["tune"]),
        Node(nodes.apply_best, ["spec", "best_params"], "tuned_spec", name="apply_best",
             tags=["train", "evaluate", "register"]),
    ])
    return head + search + pipeline(rest, inputs={"spec": "tuned_spec"})


def _report_nodes(ensemble: bool, cv: bool) -> list[Node]:
    """The one-file HTML report; before it, for an ensemble the member-vs-ensemble table, with
    ``evaluate.cv`` the K-fold cross-validation (each fold trains a model) that it shows."""
    extra = [Node(nodes.compare_members, ["spec", "dataset", "split", "model"], "ensemble_members",
                  name="compare_members", tags=["evaluate"])] if ensemble else []
    extra += [Node(nodes.cross_validate, ["spec", "dataset", "split"], "cv", name="cross_validate",
                   tags=["evaluate"])] if cv else []
    extra.append(Node(nodes.curves, ["spec", "dataset", "split", "model"], "curves", name="curves", tags=["evaluate"]))
    inputs = dict(zip(("rs", "samples", "split", "artifact", "metrics", "history", "plots", "train_plots", "per_class"),
                      ("spec", "dataset", "split", "model", "metrics", "history", "plots", "train_plots", "per_class")))
    inputs |= ({"members": "ensemble_members"} if ensemble else {}) | ({"cv": "cv"} if cv else {})
    return [*extra, Node(nodes.report, inputs, "report", name="report", tags=["evaluate"])]


def experiment_pipeline(name: str, file: Path, *, offline: bool = False,
                        ensemble: EnsembleShape | None = None, tuned: bool = False, cv: bool = False) -> Pipeline:
    """The stage nodes under Kedro's namespace ``name``: datasets become ``<name>.dataset`` etc.,
    which conf/base/catalog.yml's factories place under data/. ``offline`` adds the augment stage
    (``augment.offline``), whose materialised set the train node then reads; ``ensemble``
    (``ensemble.plan.EnsembleShape``) trains members instead of one model."""
    train_inputs = ["spec", "dataset", "split", "checkpoints"] + (["augmented"] if offline else [])
    augment_nodes = [Node(nodes.augment_offline, ["spec", "dataset", "split"], "augmented",
                          name="augment", tags=["augment"])] if offline else []
    template = Pipeline([
        Node(_bind(nodes.resolve_spec, experiment=name, file=str(file)), OVERRIDES, "spec",
             name="resolve_spec", tags=list(STAGES)),
        Node(nodes.ingest, "spec", "dataset", name="ingest", tags=["ingest"]),
        Node(nodes.split, ["spec", "dataset"], "split", name="split", tags=["split"]),
        *augment_nodes,
        *_train_nodes(train_inputs, ensemble),
        Node(nodes.evaluate, ["spec", "dataset", "split", "model", "history"],
             ["metrics", "per_class", "predictions", "plots"], name="evaluate", tags=["evaluate"]),
        *_report_nodes(ensemble is not None, cv),
        Node(nodes.register, ["spec", "model", "metrics", "dataset", "split"], "registry", name="register",
             tags=["register"]),
    ])
    return pipeline(_with_tuning(template) if tuned else template, namespace=name, inputs={OVERRIDES})

"""One experiment file -> one Kedro pipeline, with a node per stage tagged by its stage name."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kedro.pipeline import Node, Pipeline, pipeline

from deeppipe.pipelines import nodes

STAGES = ("ingest", "split", "augment", "train", "evaluate", "register")
# The run's --params, put in the catalog by deeppipe.hooks. Not Kedro's "parameters", which
# kedro-mlflow would log a second time beside the spec's own params (``parameters.train.epochs``).
OVERRIDES = "overrides"


def _bind(func: Callable[..., Any], **kwargs: Any) -> Callable[..., Any]:
    bound = functools.partial(func, **kwargs)
    functools.update_wrapper(bound, func)
    return bound


def experiment_pipeline(name: str, file: Path, *, offline: bool = False) -> Pipeline:
    """The stage nodes under Kedro's namespace ``name``: datasets become ``<name>.dataset`` etc.,
    which conf/base/catalog.yml's factories place under data/. ``offline`` adds the augment stage
    (``augment.offline``), whose materialised set the train node then reads."""
    train_inputs = ["spec", "dataset", "split", "checkpoints"] + (["augmented"] if offline else [])
    augment_nodes = [Node(nodes.augment_offline, ["spec", "dataset", "split"], "augmented",
                          name="augment", tags=["augment"])] if offline else []
    template = Pipeline([
        Node(_bind(nodes.resolve_spec, experiment=name, file=str(file)), OVERRIDES, "spec",
             name="resolve_spec", tags=list(STAGES)),
        Node(nodes.ingest, "spec", "dataset", name="ingest", tags=["ingest"]),
        Node(nodes.split, ["spec", "dataset"], "split", name="split", tags=["split"]),
        *augment_nodes,
        Node(nodes.train, train_inputs, ["model", "history", "train_plots"], name="train", tags=["train"]),
        Node(nodes.evaluate, ["spec", "dataset", "split", "model", "history"],
             ["metrics", "per_class", "predictions", "plots"], name="evaluate", tags=["evaluate"]),
        Node(nodes.register, ["spec", "model", "metrics", "dataset", "split"], "registry", name="register",
             tags=["register"]),
    ])
    return pipeline(template, namespace=name, inputs={OVERRIDES})

"""One experiment file -> one Kedro pipeline, with a node per stage tagged by its stage name."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kedro.pipeline import Node, Pipeline, pipeline

from deeppipe.pipelines import nodes

STAGES = ("ingest", "split", "train", "evaluate", "register")


def _bind(func: Callable[..., Any], **kwargs: Any) -> Callable[..., Any]:
    bound = functools.partial(func, **kwargs)
    functools.update_wrapper(bound, func)
    return bound


def experiment_pipeline(name: str, file: Path) -> Pipeline:
    """The stage nodes under Kedro's namespace ``name``: datasets become ``<name>.dataset`` etc.,
    which conf/base/catalog.yml's factories place under data/."""
    template = Pipeline([
        Node(_bind(nodes.resolve_spec, experiment=name, file=str(file)), "parameters", "spec",
             name="resolve_spec", tags=list(STAGES)),
        Node(nodes.ingest, "spec", "dataset", name="ingest", tags=["ingest"]),
        Node(nodes.split, ["spec", "dataset"], "split", name="split", tags=["split"]),
        Node(nodes.train, ["spec", "dataset", "split"], ["model", "history"], name="train", tags=["train"]),
        Node(nodes.evaluate, ["spec", "dataset", "split", "model", "history"], ["metrics", "predictions", "plots"],
             name="evaluate", tags=["evaluate"]),
        Node(nodes.register, ["spec", "model", "metrics", "dataset", "split"], "registry", name="register",
             tags=["register"]),
    ])
    return pipeline(template, namespace=name)

"""One experiment file -> one Kedro pipeline, with a node per stage tagged by its stage name."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kedro.pipeline import Node, Pipeline, pipeline

from deeppipe.pipelines import nodes

STAGES = ("ingest", "split", "augment", "train", "evaluate", "register")


def _bind(func: Callable[..., Any], **kwargs: Any) -> Callable[..., Any]:
    bound = functools.partial(func, **kwargs)
    functools.update_wrapper(bound, func)
    return bound


def _offline(file: Path) -> bool:
    """Whether the experiment materialises augmented data (an extra, DVC-tracked stage)."""
    try:
        from deeppipe.spec.loader import read_yaml

        aug = read_yaml(file).get("augment")
        return isinstance(aug, dict) and bool(aug.get("offline"))
    except Exception:  # a broken file is reported by validation when the pipeline runs
        return False


def experiment_pipeline(name: str, file: Path) -> Pipeline:
    """The stage nodes under Kedro's namespace ``name``: datasets become ``<name>.dataset`` etc.,
    which conf/base/catalog.yml's factories place under data/."""
    offline = _offline(file)
    train_inputs = ["spec", "dataset", "split"] + (["augmented"] if offline else [])
    augment_nodes = [Node(nodes.augment_offline, ["spec", "dataset", "split"], "augmented",
                          name="augment", tags=["augment"])] if offline else []
    template = Pipeline([
        Node(_bind(nodes.resolve_spec, experiment=name, file=str(file)), "parameters", "spec",
             name="resolve_spec", tags=list(STAGES)),
        Node(nodes.ingest, "spec", "dataset", name="ingest", tags=["ingest"]),
        Node(nodes.split, ["spec", "dataset"], "split", name="split", tags=["split"]),
        *augment_nodes,
        Node(nodes.train, train_inputs, ["model", "history"], name="train", tags=["train"]),
        Node(nodes.evaluate, ["spec", "dataset", "split", "model", "history"], ["metrics", "predictions", "plots"],
             name="evaluate", tags=["evaluate"]),
        Node(nodes.register, ["spec", "model", "metrics", "dataset", "split"], "registry", name="register",
             tags=["register"]),
    ])
    return pipeline(template, namespace=name)

"""One experiment file -> one Kedro pipeline, with a node per stage tagged by its stage name."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kedro.pipeline import Node, Pipeline

from deeppipe.pipelines import nodes

STAGES = ("ingest", "split", "train", "evaluate", "register")


def _bind(func: Callable[..., Any], **kwargs: Any) -> Callable[..., Any]:
    bound = functools.partial(func, **kwargs)
    functools.update_wrapper(bound, func)
    return bound


def experiment_pipeline(name: str, file: Path) -> Pipeline:
    """Nodes read and write ``<name>.<dataset>``; conf/base/catalog.yml's factories place them on disk."""
    d = f"{name}."
    return Pipeline([
        Node(_bind(nodes.resolve_spec, experiment=name, file=str(file)), "parameters", d + "spec",
             name=d + "resolve_spec", tags=list(STAGES)),
        Node(nodes.ingest, d + "spec", d + "dataset", name=d + "ingest", tags=["ingest"]),
        Node(nodes.split, [d + "spec", d + "dataset"], d + "split", name=d + "split", tags=["split"]),
        Node(nodes.train, [d + "spec", d + "dataset", d + "split"], [d + "model", d + "history"],
             name=d + "train", tags=["train"]),
        Node(nodes.evaluate, [d + "spec", d + "dataset", d + "split", d + "model", d + "history"],
             [d + "metrics", d + "predictions", d + "plots"], name=d + "evaluate", tags=["evaluate"]),
        Node(nodes.register, [d + "spec", d + "model", d + "metrics", d + "dataset", d + "split"],
             d + "registry", name=d + "register", tags=["register"]),
    ])

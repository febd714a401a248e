"""Networks from YAML: ``build_model(spec, input_shape, num_outputs)`` -> a ``LayerGraph``.

The ``model:`` section of an experiment is either a layer list (a chain, or a graph with
``name:``/``from:``), with reusable ``blocks:``, or ``zoo: NAME`` plus overrides (``ModelConfig``
is its pydantic type). See docs/models.md. Where things are:

- ``factory``: ``build_model``; ``build/``: the builder, one job per module; ``zoo/``: the zoo
  files, their catalogue and their build.
- ``layers/``: deeppipe's layers and blocks and the torch.nn harvest, all in ``LAYERS``;
  ``activations``, ``initialisers``: the other two registries' entries.
- ``config``: the section's structure (schema); ``meta``: the record kept on built modules;
  ``layer_graph``: the module built; ``summary``, ``picture``: what was built, as a table and a
  picture; ``shapes``: shape rules.
"""

from __future__ import annotations

from deeppipe.models import zoo
from deeppipe.models.activations import ACTIVATIONS, make_activation
from deeppipe.models.config import LayersModel, ModelConfig, ZooModel, parse_model
from deeppipe.models.factory import build_model
from deeppipe.models.initialisers import INITIALISERS
from deeppipe.models.layer_graph import LayerGraph, NodeInfo
from deeppipe.models.layers import LAYERS, register_layer
from deeppipe.models.meta import LayerMeta, meta_of
from deeppipe.models.picture import draw_graph
from deeppipe.models.shapes import conv_out
from deeppipe.models.summary import ModelSummary, SummaryRow, summarize

INITS = INITIALISERS  # the registry's former name, kept while other stages move over

__all__ = [
    "ACTIVATIONS",
    "INITIALISERS",
    "INITS",
    "LAYERS",
    "LayerGraph",
    "LayerMeta",
    "LayersModel",
    "ModelConfig",
    "ModelSummary",
    "NodeInfo",
    "SummaryRow",
    "ZooModel",
    "build_model",
    "conv_out",
    "draw_graph",
    "make_activation",
    "meta_of",
    "parse_model",
    "register_layer",
    "summarize",
    "zoo",
]

"""The one factory: ``build_model(spec, input_shape, num_outputs)`` -> the built ``LayerGraph``,
for a layer list or a zoo name, given as the plain mapping read from YAML or a ``ModelConfig``."""

from __future__ import annotations

from typing import Any

import torch
from pydantic import BaseModel

from deeppipe.errors import SpecError
from deeppipe.models.build.context import BuildRequest
from deeppipe.models.build.section import build_layer_graph
from deeppipe.models.config import model_dict
from deeppipe.models.layer_graph import LayerGraph
from deeppipe.models.zoo.build import build_zoo


def build_model(
    spec: dict[str, Any] | BaseModel | str,
    input_shape: tuple[int, ...] | None,
    num_outputs: int | None = None,
    *,
    file: str | None = None,
    path: str = "model",
    device: str | torch.device | None = None,
) -> LayerGraph:
    """Build the network a ``model:`` section describes.

    ``spec`` is the section as read from YAML, a validated ``ModelConfig`` (``LayersModel`` or
    ``ZooModel``: built from exactly what the user wrote), or ``"zoo:NAME"``. ``input_shape`` is
    the per-sample shape the data provides ((1, 28, 28), (30,), (T, F)); ``num_outputs`` the head
    size the data needs (None: unchecked, e.g. autoencoders). The result maps (N, *input_shape)
    float32 to (N, num_outputs) logits, or to the input's shape for an autoencoder.
    ``device="meta"`` builds without allocating memory (parameter counting); otherwise the weights
    are initialised on the CPU and moved to ``device``.

    Every mistake raises ``SpecError`` naming the YAML path (``model.layers[4].Linear``).
    """
    if isinstance(spec, BaseModel):
        spec = model_dict(spec)
    elif isinstance(spec, str):
        spec = {"zoo": spec.removeprefix("zoo:")}
    if not isinstance(spec, dict):
        raise SpecError("the model section is a mapping", path=path, file=file,
                        expected="{layers: [...]} or {zoo: NAME}", found=spec)
    if num_outputs is not None and (isinstance(num_outputs, bool) or int(num_outputs) < 1):
        raise SpecError("num_outputs must be a positive whole number", path=path, file=file,
                        found=num_outputs)
    req = BuildRequest(input_shape, num_outputs, file, path, device)
    return build_zoo(spec, req) if "zoo" in spec else build_layer_graph(spec, req)

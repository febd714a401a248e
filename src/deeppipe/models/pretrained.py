"""Transfer learning: start a network from another model's weights (``model.pretrained``).

``from`` is a deeppipe model folder (``model.safetensors`` beside ``meta.json``), a checkpoint
(``.pt``: a training checkpoint or a plain state dict, loaded with ``weights_only=True``; or a
``.safetensors`` file), or an MLflow model URI (``models:/name@alias``, ``runs:/<id>/model``),
whose deeppipe model folder is downloaded. Only the network's own weights are taken (a saved
deeppipe model's ``body.``), never its input statistics or target scale: those come from the new
data. ``layers`` (glob patterns of parameter names, as ``deeppipe summary`` lists them) choose
which to load; a new head of another size is left out by naming the layers before it.

Every selected weight must exist in both networks with the same shape: a mismatch is refused
naming the parameter and both shapes, before any training (``deeppipe validate`` runs it on the
meta device); loaded, missing and unexpected names are reported.
"""

from __future__ import annotations

import fnmatch
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from deeppipe.errors import SpecError

log = logging.getLogger(__name__)
PATH = "model.pretrained"


@dataclass
class Transfer:
    """What a load did: parameter names loaded, selected but absent from the source (missing),
    in the source but not in this network (unexpected)."""

    loaded: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (f"{len(self.loaded)} tensor(s) loaded, {len(self.missing)} missing from the source, "
                f"{len(self.unexpected)} in the source not used")


def _model_file(folder: Path) -> Path | None:
    if (folder / "model.safetensors").is_file():
        return folder / "model.safetensors"
    found = sorted(folder.rglob("model.safetensors"))  # an MLflow model: artifacts/<...>/model.safetensors
    return found[0] if found else None


def _resolve(source: str, file: str | None) -> Path:
    if source.startswith(("models:/", "runs:/", "mlflow-artifacts:/")):
        import mlflow

        try:
            local = Path(mlflow.artifacts.download_artifacts(artifact_uri=source))
        except mlflow.exceptions.MlflowException as exc:
            raise SpecError(f"the MLflow model cannot be fetched ({exc.message.splitlines()[0]})", path=f"{PATH}.from",
                            file=file, expected="a model URI of the tracking store in use (MLFLOW_TRACKING_URI)",
                            found=source) from None
        found = _model_file(local)
        if found is None:
            raise SpecError("the MLflow model holds no deeppipe model (model.safetensors)", path=f"{PATH}.from",
                            file=file, found=source)
        return found
    path = Path(source)
    if path.is_dir():
        found = _model_file(path)
        if found is None:
            raise SpecError("the folder holds no model.safetensors", path=f"{PATH}.from", file=file,
                            expected="a deeppipe model folder such as data/06_models/<experiment>/model", found=source)
        return found
    if not path.is_file():
        raise SpecError("the pretrained weights do not exist", path=f"{PATH}.from", file=file,
                        expected="an existing model folder, .pt or .safetensors file, or models:/... URI", found=source)
    return path


def source_state(source: str, *, file: str | None = None) -> dict[str, torch.Tensor]:
    """The source network's weights by parameter name (a deeppipe model's ``body.`` prefix removed)."""
    path = _resolve(source, file)
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)  # never unpickles code
            if isinstance(state, dict) and isinstance(state.get("model"), dict):
                state = state["model"]  # a deeppipe training checkpoint
    except Exception as exc:  # safetensors' and torch's refusals, in one clear message
        # torch's own message advises the unsafe load: never repeat it
        why = ("it holds pickled objects other than tensors, which could run code when loaded"
               if "weights_only" in str(exc) or "Unpickl" in type(exc).__name__ else type(exc).__name__)
        raise SpecError(f"{path} is not a weights file deeppipe can read safely ({why})", path=f"{PATH}.from",
                        file=file, expected="a safetensors file or a PyTorch file of tensors only", found=source) from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise SpecError(f"{path} holds no state dict of tensors", path=f"{PATH}.from", file=file, found=source)
    if any(k.startswith("body.") for k in state):  # a saved deeppipe Network: its body only
        state = {k[len("body."):]: v for k, v in state.items() if k.startswith("body.")}
    return state


def _selected(names: list[str], patterns: list[str]) -> list[str]:
    return [n for n in names if any(fnmatch.fnmatchcase(n, p) for p in patterns)]


def plan(body: nn.Module, state: dict[str, torch.Tensor], patterns: list[str], *,
         file: str | None = None, new_head: bool = False) -> Transfer:
    """What loading ``state`` into ``body`` would do; a selected weight of another shape is refused.
    With ``new_head`` the last weight layer is left out (``models.transfer``: a head for this data)."""
    from deeppipe.models.transfer import head_params

    own = body.state_dict()
    head = set(head_params(body)) if new_head else set()
    wanted = [n for n in _selected(list(own), patterns) if n not in head]
    if not wanted:
        raise SpecError("no parameter of this network matches the patterns", path=f"{PATH}.layers", file=file,
                        expected=f"patterns matching some of {', '.join(list(own)[:8])}, ...", found=patterns)
    out = Transfer()
    for name in wanted:
        if name not in state:
            out.missing.append(name)
            continue
        if tuple(state[name].shape) != tuple(own[name].shape):
            raise SpecError(f"the pretrained '{name}' has shape {list(state[name].shape)}, this network's has "
                            f"{list(own[name].shape)}", path=f"{PATH}.layers", file=file,
                            expected="only layers of the same shape (leave a new head out of the patterns)",
                            found=patterns)
        out.loaded.append(name)
    out.unexpected = [n for n in _selected(list(state), patterns) if n not in own and n not in head]
    if not out.loaded:
        raise SpecError("none of the selected parameters is in the pretrained weights", path=f"{PATH}.layers",
                        file=file, expected=f"names of the source, such as {', '.join(list(state)[:6])}",
                        found=patterns)
    return out


def load_pretrained(body: nn.Module, config: Any, *, file: str | None = None) -> Transfer:
    """Copy the selected pretrained weights into ``body`` (in place) and say what was loaded."""
    state = source_state(config.source, file=file)
    transfer = plan(body, state, list(config.layers), file=file, new_head=config.new_head)
    body.load_state_dict({n: state[n] for n in transfer.loaded}, strict=False)
    log.info("pretrained weights from %s: %s", config.source, transfer.summary())
    if transfer.missing:
        log.info("not in the pretrained weights (trained from scratch): %s", ", ".join(transfer.missing[:8]))
    return transfer


Upstream = Callable[[str], "tuple[dict[str, torch.Tensor], list[int]] | None"]


def check_pretrained(body: nn.Module, config: Any, *, file: str | None = None,
                     input_shape: tuple[int, ...] | None = None, resized: bool = False,
                     upstream: Upstream | None = None) -> Transfer:
    """Validation: the source is readable, was trained on inputs of this data's shape (when its
    meta.json says), every selected weight fits this network's shapes, and the freeze leaves
    something to train. A model folder not written yet that another experiment of the project
    will write (``upstream``: its network's shapes on the meta device and its input shape) is
    checked against that experiment's network, so a pair of experiments validates before either ran."""
    from deeppipe.models.transfer import check_freeze, check_input_shape, source_input_shape

    local = not config.source.startswith(("models:/", "runs:/", "mlflow-artifacts:/"))
    planned = upstream(config.source) if local and upstream is not None and not Path(config.source).exists() else None
    if planned is not None:
        state, source_shape = planned
        log.info("%s is not trained yet: checked against the network its experiment will save", config.source)
    else:
        state = source_state(config.source, file=file)
        source_shape = source_input_shape(_resolve(config.source, file)) if local else None
    if input_shape is not None:
        check_input_shape(source_shape, input_shape, resized=resized, file=file)
    out = plan(body, state, list(config.layers), file=file, new_head=config.new_head)
    check_freeze(body, config, file=file)
    return out

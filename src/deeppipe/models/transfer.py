"""Transfer learning's choices beyond which weights to load (``model.pretrained``).

- ``new_head: true``: the last weight layer (the head) is not loaded: it starts fresh, sized for
  this data's classes, whatever the source's head was.
- ``freeze``: glob patterns of parameter names (as ``deeppipe summary`` lists them), or
  ``{all_but_last: N}``: every layer but the last N weight layers (N = 1: only the head trains).
  Frozen parameters get no gradient, and a frozen normalisation layer stays in eval mode, so its
  running statistics are not moved by the new data either: frozen layers stay bit-identical.
- ``fine_tune: {head_epochs: E1, lr_factor: f}``: two phases in one run (``training.phases``): the
  first E1 of ``train.epochs`` with the frozen layers fixed (by default all but the head), then the
  rest with every layer trainable at ``f`` times ``train.optimizer.lr``.
"""

from __future__ import annotations

import json
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

from pydantic import Field, PositiveInt
from torch import nn

from deeppipe.config import Strict
from deeppipe.errors import SpecError, closest

PATH = "model.pretrained"
_NORMS = (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm)


class AllButLast(Strict):
    """Freeze every weight layer but the last N (counted from the output)."""

    all_but_last: PositiveInt = Field(description="how many weight layers, from the output, stay trainable")


class FineTune(Strict):
    """Two-phase training: the head alone, then every layer at a lower learning rate."""

    head_epochs: PositiveInt = Field(description="epochs of the first phase (frozen layers fixed)")
    lr_factor: float = Field(0.1, gt=0, le=1, description="the second phase's lr = this x train.optimizer.lr")


def layers(body: nn.Module) -> list[str]:
    """The weight layers of ``body`` in order: the modules that own parameters directly."""
    out: list[str] = []
    for name, _ in body.named_parameters():
        owner = name.rsplit(".", 1)[0] if "." in name else ""
        if owner not in out:
            out.append(owner)
    return out


def _params_of(body: nn.Module, owners: list[str]) -> list[str]:
    return [n for n, _ in body.named_parameters() if (n.rsplit(".", 1)[0] if "." in n else "") in owners]


def head_params(body: nn.Module) -> list[str]:
    """The parameters of the last weight layer (what a new head replaces)."""
    found = layers(body)
    return _params_of(body, found[-1:])


def frozen_params(body: nn.Module, freeze: Any, *, file: str | None = None) -> list[str]:
    """The parameter names ``freeze`` names (patterns, or all but the last N weight layers)."""
    if freeze is None:
        return []
    if isinstance(freeze, AllButLast):
        found = layers(body)
        if freeze.all_but_last >= len(found):
            raise SpecError(f"the network has {len(found)} weight layer(s): keeping the last "
                            f"{freeze.all_but_last} trainable freezes nothing", path=f"{PATH}.freeze.all_but_last",
                            file=file, expected=f"1 to {len(found) - 1}", found=freeze.all_but_last)
        return _params_of(body, found[: len(found) - freeze.all_but_last])
    names, chosen = [n for n, _ in body.named_parameters()], []
    for i, pattern in enumerate(freeze):
        hit = [n for n in names if fnmatchcase(n, pattern) or fnmatchcase(n, pattern.rstrip(".") + ".*")]
        if not hit:
            raise SpecError("pattern matches no parameter of the network", path=f"{PATH}.freeze[{i}]", file=file,
                            expected="a glob over parameter names, e.g. " + ", ".join(layers(body)[:4]) + ".*",
                            found=pattern, suggestion=_closest_pattern(pattern, names, layers(body)))
        chosen.extend(n for n in hit if n not in chosen)
    return chosen


def _closest_pattern(pattern: str, names: list[str], owners: list[str]) -> str | None:
    """The layer pattern a mistyped one most likely meant (``c3.*`` -> ``c2.*``)."""
    stem = pattern.split(".")[0].strip("*")
    guess = closest(stem, owners, cutoff=0.5) if stem else None
    return f"{guess}.*" if guess else closest(pattern, names)


def phase_one_frozen(body: nn.Module, config: Any, *, file: str | None = None) -> list[str]:
    """What the first (or only) phase keeps fixed: ``freeze``, or all but the head under ``fine_tune``."""
    if config.freeze is None and config.fine_tune is not None:
        return frozen_params(body, AllButLast(all_but_last=1), file=file)
    return frozen_params(body, config.freeze, file=file)


def hold_norms(body: nn.Module, frozen: list[str]) -> list[Any]:
    """Keep each normalisation layer whose parameters are all frozen in eval mode while training
    (its running statistics unchanged); returns the hooks to remove when it thaws."""
    frozen_set, hooks = set(frozen), []
    for name, module in body.named_modules():
        own = [f"{name}.{p}" if name else p for p, _ in module.named_parameters(recurse=False)]
        if isinstance(module, _NORMS) and own and all(p in frozen_set for p in own):
            hooks.append(module.register_forward_pre_hook(_eval_mode))
    return hooks


def _eval_mode(module: nn.Module, _inputs: Any) -> None:
    module.train(False)


def check_freeze(body: nn.Module, config: Any, *, file: str | None = None) -> None:
    """Validation: the patterns name parameters, and something is left to train in the first phase."""
    frozen = set(phase_one_frozen(body, config, file=file))
    if frozen and frozen >= {n for n, _ in body.named_parameters()}:
        raise SpecError("every parameter is frozen: nothing left to train", path=f"{PATH}.freeze", file=file,
                        expected="patterns that leave the head (at least) trainable", found=str(config.freeze))


def source_input_shape(path: Path) -> list[int] | None:
    """The per-sample input shape a deeppipe model folder was trained on (its meta.json), if known."""
    meta = path.parent / "meta.json"
    try:
        shape = json.loads(meta.read_text()).get("input_shape")
    except (OSError, ValueError, AttributeError):
        return None
    return [int(v) for v in shape] if isinstance(shape, list) else None


def check_input_shape(source_shape: list[int] | None, data_shape: tuple[int, ...], *, resized: bool,
                      file: str | None = None) -> None:
    """The data must reach the source network at the size it was trained on: same channels, and
    images of another size resized (``data.resize``) to the source's."""
    if source_shape is None or list(data_shape) == list(source_shape):
        return
    if len(source_shape) == 3 and len(data_shape) == 3 and source_shape[0] == data_shape[0]:
        hint = f"data.resize: [{source_shape[1]}, {source_shape[2]}] (or no data.resize: resized to it automatically)"
        raise SpecError(f"the pretrained network was trained on {source_shape[1]}x{source_shape[2]} inputs, "
                        f"this data is {data_shape[1]}x{data_shape[2]}" + (" after data.resize" if resized else ""),
                        path="data.resize", file=file, expected=hint, found=list(data_shape))
    raise SpecError("the pretrained network was trained on inputs of another shape", path=f"{PATH}.from", file=file,
                    expected=f"inputs of shape {source_shape} (channels and layout as the source's)",
                    found=list(data_shape))

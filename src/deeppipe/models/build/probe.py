"""Learning a new layer's output shape without computing anything: run it once on a meta tensor
(no memory, no arithmetic), or ask its closed form, or, for layers whose shapes depend on the
data, run a real copy on zeros. Every failure is a SpecError naming the input shape."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn as nn

from deeppipe.models.build.context import Built, Ctx, Flow, clean, err
from deeppipe.models.initialisers import can_reset
from deeppipe.models.layers.basic import Permute, Transpose, _GlobalPool
from deeppipe.models.meta import meta_of
from deeppipe.models.shapes import MAP_PRODUCERS, fmt

_FLAT_OUT = (nn.Flatten, nn.Linear, nn.RNNBase, nn.Embedding, _GlobalPool)


def is_map_out(module: nn.Module, spatial: bool, in_shape: tuple[int, ...], in_is_map: bool,
               out: tuple[int, ...]) -> bool:
    """Whether the module's output is a feature map (``spatial``: its layer record says so)."""
    if isinstance(module, MAP_PRODUCERS) or spatial:
        return len(out) >= 2
    if isinstance(module, _FLAT_OUT):
        return False
    if isinstance(module, (Permute, Transpose)) and len(out) == 2:
        return not in_is_map  # (C, L) <-> (T, F)
    if len(out) == len(in_shape):
        return in_is_map
    return len(out) >= 3


def _keep_factory(module: nn.Module, factory: Callable[[], nn.Module] | None) -> None:
    if factory is not None and not can_reset(module):
        meta_of(module).factory = factory  # rebuilt for real when materialised (see materialize)


def cached(module: nn.Module, factory: Callable[[], nn.Module] | None, shape: tuple[int, ...],
           is_map: bool, name: str) -> Built:
    """A layer identical to one probed before (the repeated blocks of a stage): no new probe."""
    _keep_factory(module, factory)
    return Built(module, shape, is_map, name)


def probe(module: nn.Module, factory: Callable[[], nn.Module] | None, name: str, flow: Flow,
          ctx: Ctx, path: str, *, spatial: bool = False) -> Built:
    """Run the layer once on a meta tensor (or, if the layer cannot run on meta, on a tiny real one)."""
    in_shapes = flow.shapes
    closed_form = getattr(module, "dp_output_shape", None)
    if callable(closed_form) and len(in_shapes) == 1:
        try:
            shape = tuple(int(v) for v in closed_form(in_shapes[0]))
        except Exception as exc:
            raise err(f"{name} cannot take the input {fmt(in_shapes[0])}{flow.src_text}: {clean(exc)}",
                      path, ctx, found=in_shapes[0]) from None
        _keep_factory(module, factory)
        return Built(module, shape, is_map_out(module, spatial, in_shapes[0], flow.maps[0], shape), name)
    out = _run(module, factory, name, flow, ctx, path)
    if not isinstance(out, torch.Tensor):
        raise err(
            f"{name} returns {type(out).__name__}, not a tensor; a layer in a chain must return one tensor "
            "(recurrent layers: use deeppipe's RNN/LSTM/GRU, which take output: last|all)",
            path, ctx,
        )
    shape = tuple(int(s) for s in out.shape[1:])
    if out.dim() == 0 or out.shape[0] != 2:
        raise err(f"{name} changed the batch axis (got {tuple(out.shape)} for a batch of 2)", path, ctx)
    if any(s <= 0 for s in shape):
        raise err(
            f"{name} turns {fmt(in_shapes[0])}{flow.src_text} into the empty {fmt(shape)}; the input is too "
            "small for it",
            path, ctx, found=in_shapes[0],
        )
    _keep_factory(module, factory)
    return Built(module, shape, is_map_out(module, spatial, in_shapes[0], flow.maps[0], shape), name)


def _run(module: nn.Module, factory: Callable[[], nn.Module] | None, name: str, flow: Flow, ctx: Ctx,
         path: str) -> Any:
    """The module's output for a batch of 2 zeros of each input shape, on the meta device if it can."""
    in_shapes = flow.shapes
    was_training = module.training
    module.eval()
    try:
        xs = [torch.zeros((2, *s), device="meta") for s in in_shapes]
        with torch.no_grad():
            return module(*xs)
    except Exception as exc:
        meta_exc = exc
        if (factory is not None and isinstance(exc, (NotImplementedError, RuntimeError))
                and "meta" in str(exc).lower()):
            try:  # data-dependent layers: run a real copy on zeros
                real = factory().eval()
                with torch.no_grad():
                    out = real(*[torch.zeros((2, *s)) for s in in_shapes])
                if out is not None:
                    return out.to("meta") if isinstance(out, torch.Tensor) else out
            except Exception as exc2:
                meta_exc = exc2
        shapes = " and ".join(fmt(s) for s in in_shapes)
        raise err(f"{name} cannot take the input {shapes}{flow.src_text}: {clean(meta_exc)}", path, ctx,
                  found=in_shapes[0] if len(in_shapes) == 1 else in_shapes) from None
    finally:
        module.train(was_training)

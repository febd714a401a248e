"""Device-side batch augmentation: a declared albumentations pipeline run on whole (B, C, H, W) tensors.

For small images held on the training device, per-sample albumentations in worker processes is
the bottleneck (and a GPU would wait on it). ``plan_device(compose)`` maps every step to its batch
version (``device_ops``), including the OneOf / SomeOf / Sequential containers, and returns a
``DeviceAugment``; or, when some step has none, a string saying which (the caller logs it and
falls back to albumentations per sample). Randomness comes from the CPU generator the batch source
hands over, so a seeded run reproduces exactly.
"""

from __future__ import annotations

import copy

import albumentations as A
import torch

import deeppipe.augment.device_ops as ops
import deeppipe.augment.filters as edge
from deeppipe.augment.device_ops import Op
from deeppipe.errors import SpecError


class DeviceAugment:
    """A chain of batch ops; called as ``batch_transform(xb, generator) -> xb``."""

    def __init__(self, steps: list[tuple[str, Op]]) -> None:
        self.steps = steps

    @property
    def names(self) -> list[str]:
        return [n for n, _ in self.steps]

    def __call__(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        for _, op in self.steps:
            x = op(x, gen)
        return x

    def __repr__(self) -> str:
        return f"DeviceAugment({', '.join(self.names)})"


def _on_subset(x: torch.Tensor, mask: torch.Tensor, op: Op, gen: torch.Generator) -> torch.Tensor:
    """Apply ``op`` to the images selected by ``mask`` only (shape-preserving ops)."""
    idx = mask.nonzero().squeeze(1)
    if idx.numel() == 0:
        return x
    part = op(x.index_select(0, idx), gen)
    if part.shape[1:] != x.shape[1:]:  # e.g. Sequential(p<1) holding a crop: sizes would differ
        raise SpecError(
            "a container step changes the image size for only some images, which cannot be batched",
            path="augment.train",
            expected="containers whose steps keep the size (e.g. pad then crop back), or p: 1",
            found=f"{tuple(x.shape[1:])} -> {tuple(part.shape[1:])}",
        )
    out = x.clone()
    out[idx] = part
    return out


def _forced(t: A.BasicTransform | A.BaseCompose) -> A.BasicTransform | A.BaseCompose:
    """A copy with p = 1: OneOf applies its chosen child with force_apply=True."""
    t2 = copy.copy(t)
    t2.p = 1.0
    return t2


def one_of_op(t: A.OneOf, children: list[Op]) -> Op:
    weights = torch.as_tensor(t.transforms_ps, dtype=torch.float64)

    def op(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        n = len(x)
        applied = torch.rand(n, generator=gen) < t.p
        choice = torch.multinomial(weights, n, replacement=True, generator=gen)
        for k, child in enumerate(children):
            x = _on_subset(x, (applied & (choice == k)).to(x.device), child, gen)
        return x

    return op


def some_of_op(t: A.SomeOf, children: list[Op]) -> Op:
    k_all, n_pick = len(children), int(t.n)

    def op(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        n = len(x)
        applied = torch.rand(n, generator=gen) < t.p
        if t.replace:  # a child may be picked several times: it is then applied that many times
            picks = torch.randint(0, k_all, (n, n_pick), generator=gen)
        else:  # n distinct children, uniformly (random keys, take the n smallest)
            picks = torch.rand(n, k_all, generator=gen).argsort(dim=1)[:, : min(n_pick, k_all)]
        counts = torch.zeros(n, k_all, dtype=torch.long).scatter_add_(
            1, picks, torch.ones_like(picks))
        for k, child in enumerate(children):  # albumentations applies them in list order
            for c in range(1, int(counts[:, k].max()) + 1 if n else 1):
                x = _on_subset(x, (applied & (counts[:, k] >= c)).to(x.device), child, gen)
        return x

    return op


def sequential_op(t: A.Sequential, children: list[Op]) -> Op:
    def chain(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        for child in children:
            x = child(x, gen)
        return x

    def op(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        applied = torch.rand(len(x), generator=gen) < t.p
        if bool(applied.all()):  # every image: the chain may change the size (pad, crop, resize)
            return chain(x, gen)
        return _on_subset(x, applied.to(x.device), chain, gen)

    return op


def _container(t: A.BaseCompose) -> Op | str:
    kind = type(t).__name__
    if kind not in ("OneOf", "SomeOf", "Sequential"):  # RandomOrder: a per-image order
        return f"{kind} has no device-side version"
    children = []
    for child in t.transforms:
        built = _builder(_forced(child) if kind == "OneOf" else child)
        if isinstance(built, str):
            return f"inside {kind}: {built}"
        children.append(built)
    return {"OneOf": one_of_op, "SomeOf": some_of_op, "Sequential": sequential_op}[kind](t, children)


def _builder(t: A.BasicTransform | A.BaseCompose) -> Op | str:
    if isinstance(t, A.BaseCompose):
        return _container(t)
    kind = type(t)
    if kind is A.HorizontalFlip:
        return ops.flip_op(t, 3)
    if kind is A.VerticalFlip:
        return ops.flip_op(t, 2)
    if kind is A.NoOp:
        return lambda x, gen: x
    if kind in edge.EDGE_FILTERS.values():
        return ops.edge_filter_op(t)
    factory = {
        A.Affine: ops.affine_op,
        A.PadIfNeeded: ops.pad_op,
        A.RandomCrop: lambda s: ops.crop_op(s, random_pos=True),
        A.CenterCrop: lambda s: ops.crop_op(s, random_pos=False),
        A.Resize: ops.resize_op,
        A.RandomBrightnessContrast: ops.brightness_contrast_op,
        A.GaussNoise: ops.gauss_noise_op,
        A.Normalize: ops.normalize_op,
        A.CoarseDropout: ops.coarse_dropout_op,
        A.Erasing: ops.erasing_op,
    }.get(kind)
    return factory(t) if factory is not None else f"{kind.__name__} has no device-side version"


def plan_device(compose: A.BaseCompose) -> DeviceAugment | str:
    """A DeviceAugment doing the whole pipeline on batches, or the reason it cannot."""
    steps: list[tuple[str, Op]] = []
    for i, t in enumerate(compose.transforms):
        built = _builder(t)
        if isinstance(built, str):
            return f"step {i} ({type(t).__name__}): {built}"
        steps.append((type(t).__name__, built))
    return DeviceAugment(steps)

"""Shape rules the builder applies before it asks torch: inferred input sizes and early checks.

Output shapes themselves come from running each new layer once on a meta-device tensor (no
memory, no arithmetic), so any torch layer is covered; the checks here exist to turn the common
mistakes into messages that name both shapes instead of a torch traceback.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from typing import Any

import torch.nn as nn

from deeppipe.errors import SpecError


def fmt(shape: Sequence[int]) -> str:
    """(64, 7, 7) -> '(64, 7, 7)'; (10,) -> '(10,)'."""
    shape = tuple(int(s) for s in shape)
    return f"({shape[0]},)" if len(shape) == 1 else f"({', '.join(str(s) for s in shape)})"


# Arguments torch layers take from the incoming shape: (rule, what it is, for messages).
# normalized_shape is handled apart.
INFERRED: dict[str, tuple[Callable[[Sequence[int]], int], str]] = {
    "in_channels": (lambda s: s[0], "channels (axis 0)"),
    "num_features": (lambda s: s[0], "features/channels (axis 0)"),
    "num_channels": (lambda s: s[0], "channels (axis 0)"),
    "in_features": (lambda s: s[-1], "features (last axis)"),
    "input_size": (lambda s: s[-1], "features per step (last axis)"),
    "embed_dim": (lambda s: s[-1], "features (last axis)"),
    "d_model": (lambda s: s[-1], "features (last axis)"),
}

_DIM_SUFFIX = re.compile(r"([123])d$", re.IGNORECASE)

_m = nn.modules
# Convolutions and poolings: they work on (C, ...) maps of a fixed rank and produce maps.
WINDOWED = (_m.conv._ConvNd, _m.pooling._MaxPoolNd, _m.pooling._AvgPoolNd, _m.pooling._AdaptiveAvgPoolNd,
            _m.pooling._AdaptiveMaxPoolNd, _m.pooling._LPPoolNd)
# Layers whose output is a feature map (how the builder knows a Linear needs a Flatten first).
MAP_PRODUCERS = (*WINDOWED, nn.Upsample, nn.PixelShuffle, nn.PixelUnshuffle)
# Layers named ...1d/2d/3d that need an input of that rank.
_RANKED = (*WINDOWED, _m.pooling._MaxUnpoolNd, _m.batchnorm._BatchNorm, _m.instancenorm._InstanceNorm,
           _m.padding._ReflectionPadNd, _m.padding._ReplicationPadNd, _m.padding._ConstantPadNd,
           _m.dropout._DropoutNd)
_AXES = {
    1: "(channels, length)",
    2: "(channels, height, width)",
    3: "(channels, depth, height, width)",
}


def spatial_dims(cls: Any) -> int | None:
    """1, 2 or 3 for Conv2d-like classes named ...1d/2d/3d, else None."""
    if not isinstance(cls, type) or not issubclass(cls, _RANKED):
        return None
    m = _DIM_SUFFIX.search(cls.__name__)
    if not m:
        return None
    if issubclass(cls, nn.modules.dropout._DropoutNd) and cls.__name__ in (
        "Dropout",
        "AlphaDropout",
    ):
        return None
    return int(m.group(1))


def check_rank(
    cls: Any, type_name: str, in_shape: tuple[int, ...], path: str, file: str | None, src: str
) -> None:
    """A Conv2d needs (C, H, W); a BatchNorm1d (F,) or (C, L); say so instead of letting torch guess."""
    d = spatial_dims(cls)
    if d is None:
        return
    ok = {d + 1}
    if issubclass(cls, nn.modules.batchnorm._BatchNorm) and d == 1:
        ok = {1, 2}
    if len(in_shape) in ok:
        return
    want = (
        _AXES[d]
        if d + 1 in ok
        else " or ".join(sorted({_AXES.get(r - 1, "(features,)") for r in ok}))
    )
    hint = ""
    if len(in_shape) == 1 and d >= 1:
        hint = (
            "; the input is flat: put Reshape {shape: [C, H, W]} before it, or remove the Flatten"
        )
    elif len(in_shape) > d + 1:
        hint = f"; use the {len(in_shape) - 1}-D version"
    raise SpecError(
        f"{type_name} expects a {want} input per sample but gets {fmt(in_shape)}{src}{hint}",
        path=path,
        file=file,
        expected=want,
        found=in_shape,
    )


def check_flat(
    type_name: str, in_shape: tuple[int, ...], is_map: bool, path: str, file: str | None, src: str
) -> None:
    """A Linear after a convolution without a Flatten is the most common chain mistake."""
    if len(in_shape) >= 3 or (len(in_shape) == 2 and is_map):
        raise SpecError(
            f"{type_name} needs flat features (F,) per sample but gets the map {fmt(in_shape)}{src}; "
            f"add '- Flatten: {{}}' (or GlobalAvgPool) before it",
            path=path,
            file=file,
            expected="(features,)",
            found=in_shape,
        )


def _tuple(v: Any, d: int) -> tuple[int, ...] | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, int):
        return (v,) * d
    if (
        isinstance(v, (list, tuple))
        and len(v) == d
        and all(isinstance(x, int) and not isinstance(x, bool) for x in v)
    ):
        return tuple(v)
    return None


def check_window(
    cls: Any,
    type_name: str,
    kwargs: dict[str, Any],
    in_shape: tuple[int, ...],
    path: str,
    file: str | None,
    src: str,
) -> None:
    """A window (kernel) larger than the padded map would give an empty output: refuse it."""
    d = spatial_dims(cls)
    is_conv = isinstance(cls, type) and issubclass(cls, nn.modules.conv._ConvNd)
    is_pool = isinstance(cls, type) and issubclass(
        cls,
        (
            nn.modules.pooling._MaxPoolNd,
            nn.modules.pooling._AvgPoolNd,
            nn.modules.pooling._LPPoolNd,
        ),
    )
    if d is None or not (is_conv or is_pool) or len(in_shape) != d + 1:
        return
    if is_conv and issubclass(cls, nn.modules.conv._ConvTransposeNd):
        return
    k = _tuple(kwargs.get("kernel_size"), d)
    if k is None:
        return
    s = _tuple(kwargs.get("stride") or (k if is_pool else 1), d) or (1,) * d
    pad_arg = kwargs.get("padding", 0)
    if isinstance(pad_arg, str):
        if pad_arg == "same":
            return
        pad_arg = 0
    p = _tuple(pad_arg, d) or (0,) * d
    dil = _tuple(kwargs.get("dilation", 1), d) or (1,) * d
    ceil = bool(kwargs.get("ceil_mode", False))
    spatial = in_shape[1:]
    outs = []
    for n, kk, ss, pp, dd in zip(spatial, k, s, p, dil):
        span = dd * (kk - 1) + 1
        num = n + 2 * pp - span
        outs.append((math.ceil(num / ss) if ceil else num // ss) + 1 if num >= 0 else 0)
    if all(o > 0 for o in outs):
        return
    win = "x".join(str(kk) for kk in k)
    mapsz = "x".join(str(n) for n in spatial)
    what = "window" if is_pool else "kernel"
    raise SpecError(
        f"{type_name} {what} {win} is larger than the {mapsz} map it gets{src} (input {fmt(in_shape)}, "
        f"padding {p[0] if len(set(p)) == 1 else p}): the output would be empty; use a larger input, fewer "
        "downsampling layers, or padding",
        path=path,
        file=file,
        expected=f"a map of at least {win} (after padding)",
        found=in_shape,
    )


def conv_out(n: int, k: int, s: int = 1, p: int = 0, d: int = 1) -> int:
    """floor((n + 2p - d(k-1) - 1) / s) + 1: the size a convolution or pooling window produces."""
    return (n + 2 * p - d * (k - 1) - 1) // s + 1

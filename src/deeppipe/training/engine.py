"""The engine settings a run resolves once for its device: precision, channels_last, torch.compile
and fused optimisers.

Each is ``auto`` by default, so one spec is fast wherever it runs: on CUDA ``auto`` means bf16
autocast (where the GPU has bf16; fp32 otherwise), channels_last for networks with 2-D
convolutions, torch.compile (falling back to eager, with a warning, on a graph it cannot compile)
for networks without recurrent layers, and the fused Adam/AdamW/SGD kernels. On the CPU and on
Apple's MPS ``auto`` keeps fp32 eager training, so CPU results stay what they were: whether bf16
pays there depends on the processor (on this machine's AVX-512-BF16 EPYC a Fashion-MNIST CNN step
took 0.7x the fp32 time; where the instructions are missing it is emulated) and it changes the
numbers; channels_last took 0.9x; inductor's compile costs ~30 s per network, more than most CPU
runs take. Write ``precision: bf16`` or ``channels_last: true`` to use them there. Every setting
written explicitly (``precision: fp32``, ``channels_last: false``, ``compile: false``, torch's
``optimizer: {fused: false}``) wins over ``auto``.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

log = logging.getLogger(__name__)

AUTO = "auto"
# layers torch.compile graph-breaks on (packed sequences, cuDNN's fused RNN kernels): eager is as fast
_RECURRENT = (nn.RNNBase,)


@dataclass(frozen=True)
class Engine:
    """What ``auto`` became on this device (or what the spec set)."""

    precision: str  # fp32 | bf16 | fp16
    channels_last: bool
    compile: dict[str, Any] | None  # torch.compile's keyword arguments; None: eager
    fused: bool  # fused optimiser kernels (CUDA)
    fallback: bool = False  # compile chosen by auto: a graph it cannot compile runs eagerly

    @property
    def amp_dtype(self) -> torch.dtype | None:
        return {"bf16": torch.bfloat16, "fp16": torch.float16}.get(self.precision)

    def autocast(self, device: torch.device) -> contextlib.AbstractContextManager:
        dtype = self.amp_dtype
        return contextlib.nullcontext() if dtype is None else torch.autocast(device.type, dtype=dtype)

    def describe(self) -> str:
        parts = [self.precision]
        if self.channels_last:
            parts.append("channels_last")
        if self.compile is not None:
            parts.append("torch.compile")
        if self.fused:
            parts.append("fused optimiser")
        return ", ".join(parts)


def _has(model: nn.Module, kinds: tuple[type, ...]) -> bool:
    return any(isinstance(m, kinds) for m in model.modules())


def resolve_engine(cfg: Any, device: torch.device, model: nn.Module, *,
                   bf16_supported: Callable[[], bool] | None = None) -> Engine:
    """``cfg`` (a TrainConfig) resolved for ``model`` on ``device``; ``bf16_supported`` defaults
    to torch's own check for the current CUDA device (tests pass their own)."""
    cuda = device.type == "cuda"
    precision = cfg.precision
    if precision == AUTO:
        supported = bf16_supported or torch.cuda.is_bf16_supported
        precision = "bf16" if cuda and supported() else "fp32"
    channels_last = cfg.channels_last
    if channels_last == AUTO:
        channels_last = cuda and _has(model, (nn.Conv2d,))
    compile_opts, fallback = cfg.compile, False
    if compile_opts == AUTO:
        fallback = cuda and not _has(model, _RECURRENT)
        compile_opts = {} if fallback else None
    elif compile_opts is True:
        compile_opts = {}
    elif compile_opts is False:
        compile_opts = None
    chosen = cfg.optimizer.kwargs()  # torch's own `fused:` / `foreach:` arguments, when written
    fused = cuda and "fused" not in chosen and "foreach" not in chosen
    return Engine(precision, bool(channels_last), compile_opts, bool(fused), fallback)


def compiled(net: nn.Module, engine: Engine) -> nn.Module:
    """``net`` under torch.compile as the engine says (``net`` itself when it says eager)."""
    if engine.compile is None:
        return net
    from deeppipe.training.checks import check_compile

    check_compile(engine.compile)
    if engine.fallback:
        # auto only: a network dynamo cannot capture still trains, eagerly, instead of failing
        # the run; an explicit `compile:` keeps torch's error
        from torch import _dynamo

        _dynamo.config.suppress_errors = True
    return torch.compile(net, **engine.compile)

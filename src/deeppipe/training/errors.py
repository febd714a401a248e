"""Errors a training run stops with: clear messages, no traceback in `kedro run`."""

from __future__ import annotations

from typing import Any

import click

# what each allocator says when it is out of memory: CUDA's OutOfMemoryError, MPS' RuntimeError,
# PyTorch's CPU allocator ("DefaultCPUAllocator: can't allocate memory") and Python's MemoryError
_OOM_TEXT = ("out of memory", "can't allocate memory", "cannot allocate memory", "not enough memory")


class TrainingError(click.ClickException):
    """Training cannot go on (diverged, out of memory, a checkpoint from another spec).

    A ClickException so ``kedro run`` and ``deeppipe`` print the message, not a traceback.
    """

    exit_code = 1

    def __str__(self) -> str:
        return self.message


def is_out_of_memory(exc: BaseException) -> bool:
    """True for an allocation failure on any device (CUDA, MPS, the CPU)."""
    if isinstance(exc, MemoryError):
        return True
    import torch

    if isinstance(exc, torch.OutOfMemoryError):
        return True
    return isinstance(exc, RuntimeError) and any(t in str(exc).lower() for t in _OOM_TEXT)


def oom_message(batch_size: int, accumulation: int, device: str, precision: str, *,
                parameters: int | None = None, when: str = "in training") -> str:
    size = ""
    if parameters is not None:
        size = f" for a network of {parameters:,} parameters ({parameters * 4 / 2**30:.3g} GiB in fp32, "
        size += "about 4x that with gradients and optimiser state)"
    tips = []
    if parameters is not None and when == "building the network":
        tips.append("make the network smaller (model.layers widths, repeat:, or a zoo model's width/depth)")
    tips += [
        f"lower train.batch_size (now {batch_size})",
        f"and raise train.grad_accumulation (now {accumulation}) to keep the effective batch",
    ]
    if precision == "fp32":
        tips.append("use train.precision: bf16 (or fp16) to halve activation memory")
    return (
        f"out of memory on {device} {when} with train.batch_size {batch_size}{size}: "
        + "; ".join(tips)
        + "; or lower train.eval_batch_size for validation."
    )


def oom_building(exc: BaseException, spec: Any, meta: dict[str, Any]) -> BaseException:
    """The clean out-of-memory error for a network too large to build here (``exc`` itself when
    it is another failure); the parameters are counted on the meta device, which allocates nothing."""
    if not is_out_of_memory(exc):
        return exc
    from deeppipe.data.task import Task
    from deeppipe.models import build_model

    task = Task.from_dict(meta["task"])
    outputs = task.num_outputs if task.kind != "reconstruction" else None
    probe = build_model(spec.model, tuple(meta["input_shape"]), outputs, path="model", device="meta")
    cfg = spec.train
    precision = "fp32" if cfg.precision == "auto" else cfg.precision  # auto is fp32 on the CPU
    return TrainingError(oom_message(cfg.batch_size, cfg.grad_accumulation, "cpu", precision,  # built there
                                     parameters=sum(p.numel() for p in probe.parameters()),
                                     when="building the network"))

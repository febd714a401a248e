"""Errors a training run stops with: clear messages, no traceback in `kedro run`."""

from __future__ import annotations

import click


class TrainingError(click.ClickException):
    """Training cannot go on (diverged, out of memory, a checkpoint from another spec).

    A ClickException so ``kedro run`` and ``deeppipe`` print the message, not a traceback.
    """

    exit_code = 1

    def __str__(self) -> str:
        return self.message


def oom_message(batch_size: int, accumulation: int, device: str, precision: str) -> str:
    tips = [
        f"lower train.batch_size (now {batch_size})",
        f"and raise train.grad_accumulation (now {accumulation}) to keep the effective batch",
    ]
    if precision == "fp32":
        tips.append("use train.precision: bf16 (or fp16) to halve activation memory")
    return (
        f"out of memory on {device} with train.batch_size {batch_size}: "
        + "; ".join(tips)
        + "; or lower train.eval_batch_size for validation."
    )

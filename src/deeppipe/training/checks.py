"""Checks of the ``train:`` section that catch, before any work, what would otherwise fail in fit().

``validate_config`` needs nothing but the section (component names and their arguments);
``check_against`` also knows the task, the data and the model built on the meta device, so a loss
that does not fit the task, a monitor that is never logged or a device this machine lacks is
refused at ``deeppipe validate`` instead of after the first epoch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from deeppipe.config import parse_section
from deeppipe.errors import SpecError, join_path, unknown
from deeppipe.registry import LOSSES, METRICS, OPTIMIZERS
from deeppipe.training.config import TrainConfig
from deeppipe.training.device import resolve_device

if TYPE_CHECKING:
    from deeppipe.data.task import Task

COMPILE_KEYS = ("mode", "backend", "dynamic", "fullgraph", "options")


def validate_config(cfg: TrainConfig | dict[str, Any], *, file: str | None = None) -> TrainConfig:
    """The section alone: optimiser, schedule, loss and compile names and arguments."""
    from deeppipe.training.losses import build_loss
    from deeppipe.training.optim import build_optimizer
    from deeppipe.training.schedules import build_schedule

    if not isinstance(cfg, TrainConfig):
        cfg = parse_section(TrainConfig, cfg or {}, path="train", file=file)
    try:
        entry = OPTIMIZERS.entry(cfg.optimizer.name, path="train.optimizer.name")
        if entry.needs_closure or entry.sparse_only:
            why = ("re-evaluates the loss through a closure on every step" if entry.needs_closure
                   else "only works with sparse gradients (dense layers give dense ones)")
            raise SpecError(f"optimizer '{entry.name}' {why}, which deeppipe's training step does not do",
                            path="train.optimizer.name", expected="sgd, adam, adamw, rmsprop, ...",
                            found=cfg.optimizer.name)
        probe = nn.Linear(1, 1)  # stands in for the model: name patterns are checked in check_against
        groups = [g.model_copy(update={"match": "*"}) for g in cfg.optimizer.param_groups]
        opt = build_optimizer(probe, cfg.optimizer.model_copy(update={"param_groups": groups}))
        build_schedule(opt, cfg.schedule, epochs=cfg.epochs, steps_per_epoch=1)
        if cfg.loss is not None:
            from deeppipe.data.task import Task

            entry = LOSSES.entry(cfg.loss.name, path="train.loss.name")
            build_loss(cfg.loss, Task(entry.tasks[0], 2, ("a", "b")))
        if isinstance(cfg.compile, dict):
            check_compile(cfg.compile)
    except SpecError as err:
        raise err.with_context(file=file) from None
    return cfg


def check_compile(opts: dict[str, Any]) -> None:
    """torch.compile's own check of mode/backend, on a throw-away module (compiles nothing)."""
    for key in opts:
        if key not in COMPILE_KEYS:
            raise unknown("argument", key, COMPILE_KEYS, path=join_path("train.compile", key))
    try:
        torch.compile(nn.Identity(), **opts)
    except Exception as exc:  # torch raises RuntimeError / InvalidBackend for bad options
        text = str(exc).strip().splitlines()
        raise SpecError(f"torch.compile refuses these options: {text[0] if text else exc}",
                        path="train.compile", found=opts) from None


def check_against(cfg: TrainConfig, task: Task, *, has_val: bool, model: nn.Module | None = None,
                  image_input: bool, file: str | None = None) -> None:
    """What the section asks of the data and the model: raise SpecError at the first mismatch."""
    try:
        _check_loss(cfg, task)
        if cfg.early_stopping is not None:
            check_monitor(cfg.early_stopping.monitor, task, has_val=has_val, path="train.early_stopping.monitor")
        if cfg.schedule is not None and cfg.schedule.name.lower() in ("plateau", "reduce_on_plateau",
                                                                      "reducelronplateau"):
            monitor = cfg.schedule.monitor
            if not (monitor == "val/loss" and not has_val):  # falls back to train/loss by design
                check_monitor(monitor, task, has_val=has_val, path="train.schedule.monitor")
        device = resolve_device(cfg.device)
        if cfg.distributed is not None and cfg.distributed.backend == "nccl" and device.type != "cuda":
            raise SpecError("the nccl backend needs CUDA GPUs", path="train.distributed.backend",
                            expected="gloo (or auto) on this machine", found="nccl")
        for key in ("mixup", "cutmix"):
            if getattr(cfg, key) is not None and not task.is_classification:
                raise SpecError(f"{key} mixes labels; a {task.kind} task has no classes to mix",
                                path=join_path("train", key), expected="no mixing", found="set")
        if cfg.cutmix is not None and not image_input:
            raise SpecError("cutmix pastes image patches, and these inputs are not images",
                            path="train.cutmix", expected="images (N, C, H, W), or train.mixup", found="set")
        if model is not None:
            _check_patterns(cfg, model)
    except SpecError as err:
        raise err.with_context(file=file) from None


def _check_loss(cfg: TrainConfig, task: Task) -> None:
    if cfg.loss is None:
        return
    entry = LOSSES.entry(cfg.loss.name, path="train.loss.name")
    if task.kind not in entry.tasks:
        fitting = [e.name for e in LOSSES.entries() if task.kind in e.tasks]
        steps = {"ctc": " (it aligns label sequences with per-step outputs: labels of data.source "
                        "type sequence_npz with y_lengths, or digit_sequences with strings: true)",
                 "tagging": " (it scores per-step tags: data.source per: step)"}
        need = next((steps[k] for k in entry.tasks if k in steps and task.kind not in steps), "")
        raise SpecError(f"loss '{entry.name}' does not fit a {task.kind} task{need}", path="train.loss.name",
                        expected=f"one of {', '.join(fitting)} (or no loss: the task's own)",
                        found=cfg.loss.name)
    weights = cfg.loss.kwargs().get("class_weights")
    if weights is not None and (not isinstance(weights, list) or len(weights) != task.num_classes):
        raise SpecError("one class weight per class", path="train.loss.class_weights",
                            expected=f"a list of {task.num_classes} numbers", found=weights)


def check_monitor(monitor: str, task: Task, *, has_val: bool, path: str) -> None:
    """A quantity the engine logs every epoch: ``val/<metric>`` (or ``train/loss``), never a test one."""
    split, _, name = str(monitor).rpartition("/")
    if split == "test":
        raise SpecError("monitor the validation set, never the test set", path=path,
                        expected=f"val/{name}", found=monitor)
    if split not in ("val", "train") or (split == "train" and name != "loss"):
        raise SpecError("not a quantity logged during training", path=path,
                        expected="val/<metric> (e.g. val/loss, val/accuracy) or train/loss", found=monitor)
    fitting = [f"val/{e.name}" for e in METRICS.entries() if e.scalar and task.kind in e.tasks]
    try:
        entry = METRICS.entry(name, path=path)
    except SpecError:
        raise unknown("metric", monitor, [f"{split}/{n}" for n in METRICS.names(include_aliases=True)],
                      path=path, listed=fitting) from None
    if not entry.scalar or task.kind not in entry.tasks:
        raise SpecError(f"metric '{entry.name}' is not logged for a {task.kind} task", path=path,
                        expected=f"one of {', '.join(fitting)}", found=monitor)
    if split == "val" and not has_val:
        raise SpecError("this monitors the validation set, but the split leaves none", path=path,
                        expected="a validation split (data.split.val > 0), or train/loss", found=monitor)


def _check_patterns(cfg: TrainConfig, model: nn.Module) -> None:
    from deeppipe.training.params import select

    if cfg.freeze:
        frozen = set(select(model, cfg.freeze, path="train.freeze"))
        if not any(p.requires_grad and n not in frozen for n, p in model.named_parameters()):
            raise SpecError("every parameter is frozen: nothing left to train", path="train.freeze",
                            found=cfg.freeze)
    for gi, group in enumerate(cfg.optimizer.param_groups):
        select(model, group.patterns(), path=join_path("train.optimizer.param_groups", gi, "match"))

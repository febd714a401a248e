"""``fit``: the one call the Kedro train node makes."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from torch import nn

from deeppipe.errors import SpecError, join_path
from deeppipe.tracking.tracker import Tracker
from deeppipe.training.config import TrainConfig
from deeppipe.training.device import deterministic_mode
from deeppipe.training.result import FitResult

if TYPE_CHECKING:  # deeppipe.data imports scikit-learn (1 s): keep worker start-up lean
    from deeppipe.data.batches import BatchSource
    from deeppipe.data.task import Task


def _as_config(cfg: TrainConfig | dict[str, Any]) -> TrainConfig:
    if isinstance(cfg, TrainConfig):
        return cfg
    from pydantic import ValidationError

    try:
        return TrainConfig.model_validate(cfg or {})
    except ValidationError as exc:
        err = exc.errors()[0]
        path = join_path("train", *err["loc"])
        raise SpecError(err["msg"], path=path, found=err.get("input", ...)) from None


def fit(
    model: nn.Module,
    train: BatchSource,
    val: BatchSource | None,
    cfg: TrainConfig | dict[str, Any],
    task: Task,
    *,
    tracker: Tracker | None = None,
    checkpoint_dir: Path | None = None,
    seed: int = 0,
    spec_hash: str | None = None,
    metrics_fn=None,
) -> FitResult:
    """Train ``model`` on batches from ``train``, validating on ``val`` after every epoch.

    The model is moved to ``cfg.device`` and left holding the final weights (the best epoch's
    when early stopping restores them). With ``checkpoint_dir`` a run resumes from the
    checkpoint found there if it was written by the same ``spec_hash``. ``metrics_fn(y_true,
    outputs) -> dict`` adds validation metrics (numpy arrays in, floats out; keys get ``val/``).
    With ``train.distributed.nproc_per_node > 1`` the work runs in that many DDP processes.
    """
    cfg = _as_config(cfg)
    from deeppipe.training import distributed

    with deterministic_mode(cfg.deterministic):
        kwargs = dict(
            tracker=tracker,
            checkpoint_dir=checkpoint_dir,
            seed=seed,
            spec_hash=spec_hash,
            metrics_fn=metrics_fn,
        )
        if distributed.in_torchrun():  # started by torchrun: this process is one rank
            result, _ = distributed.run_rank(model, train, val, cfg, task, **kwargs)
            return result
        if cfg.distributed is not None and cfg.distributed.nproc_per_node > 1:
            return distributed.launch(model, train, val, cfg, task, **kwargs)
        from deeppipe.training.trainer import Trainer

        return Trainer(model, train, val, cfg, task, **kwargs).run()


def validate_config(cfg: TrainConfig | dict[str, Any]) -> TrainConfig:
    """Check the ``train:`` section without a model or data (``deeppipe validate``): component
    names and their keyword arguments, so a typo fails before any data is loaded."""
    import torch

    from deeppipe.data.task import Task
    from deeppipe.training.losses import build_loss
    from deeppipe.training.optim import OPTIMIZERS, _check, _valid_kwargs, build_optimizer
    from deeppipe.training.schedules import build_schedule
    from deeppipe.training.trainer import check_compile_options

    cfg = _as_config(cfg)
    valid = _valid_kwargs(OPTIMIZERS.get(cfg.optimizer.name, path="train.optimizer.name"))
    for gi, group in enumerate(cfg.optimizer.param_groups):
        _check(group.kwargs(), valid, f"train.optimizer.param_groups[{gi}]")
    probe = torch.nn.Linear(1, 1)  # stands in for the model: patterns are checked in fit()
    opt = build_optimizer(probe, cfg.optimizer.model_copy(update={"param_groups": []}))
    build_schedule(opt, cfg.schedule, epochs=cfg.epochs, steps_per_epoch=1)
    if cfg.loss is not None:
        build_loss(cfg.loss, Task("multiclass", 2))
    if isinstance(cfg.compile, dict):
        check_compile_options(cfg.compile)
    return cfg

"""``fit``: the one call the Kedro train node makes."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from torch import nn

from deeppipe.config import parse_section
from deeppipe.tracking.tracker import Tracker
from deeppipe.training.config import TrainConfig
from deeppipe.training.device import deterministic_mode
from deeppipe.training.result import FitJob, FitResult

if TYPE_CHECKING:  # deeppipe.data imports scikit-learn (1 s): keep worker start-up lean
    from deeppipe.data.batches import BatchSource
    from deeppipe.data.task import Task


def _as_config(cfg: TrainConfig | dict[str, Any]) -> TrainConfig:
    if isinstance(cfg, TrainConfig):
        return cfg
    return parse_section(TrainConfig, cfg or {}, path="train")


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
    import deeppipe.training.distributed as distributed

    job = FitJob(model, train, val, cfg, task, tracker=tracker, checkpoint_dir=checkpoint_dir, seed=seed,
                 spec_hash=spec_hash, metrics_fn=metrics_fn)
    with deterministic_mode(cfg.deterministic):
        if distributed.in_torchrun():  # started by torchrun: this process is one rank
            result, _ = distributed.run_rank(job)
            return result
        if cfg.distributed is not None and cfg.distributed.nproc_per_node > 1:
            return distributed.launch(job)
        from deeppipe.training.trainer import Trainer

        return Trainer(model, train, val, cfg, task, tracker=tracker, checkpoint_dir=checkpoint_dir, seed=seed,
                       spec_hash=spec_hash, metrics_fn=metrics_fn).run()

"""What fit() is asked to do (FitJob) and what it returns (FitResult)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any


@dataclass
class FitResult:
    """Per-epoch history and the outcome of a run.

    ``history[i]`` has ``epoch`` (``i + 1``: epochs count from 1 wherever a user reads them, and
    ``best_epoch`` too), ``train/loss``, ``val/loss`` and ``val/accuracy`` (classification, when
    there is a validation set), ``lr``, ``grad_norm``,
    ``weight_norm``, ``epoch_time_s``, ``samples_per_s`` and anything ``metrics_fn`` returned.
    """

    history: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int | None = None
    best_metric: float | None = None
    monitor: str | None = None
    stopped_early: bool = False
    epochs_run: int = 0
    resumed_from: int | None = None  # completed epochs found in the checkpoint, if resumed
    restored_best: bool = False
    checkpoint_path: Path | None = None


@dataclass(frozen=True)
class FitJob:
    """Everything one ``fit`` call trains with: the model, its batch sources, the ``train:``
    section, the task, and where it reports and checkpoints. Distributed ranks receive one."""

    model: Any
    train: Any
    val: Any
    cfg: Any
    task: Any
    tracker: Any = None
    checkpoint_dir: Path | None = None
    seed: int = 0
    spec_hash: str | None = None
    metrics_fn: Any = None

    def with_(self, **changes: Any) -> FitJob:
        return replace(self, **changes)

"""What fit() returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class FitResult:
    """Per-epoch history and the outcome of a run.

    ``history[i]`` has ``epoch`` (counting from 0), ``train/loss``, ``val/loss`` and
    ``val/accuracy`` (classification, when there is a validation set), ``lr``, ``grad_norm``,
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

    @property
    def final(self) -> dict[str, float]:
        return self.history[-1] if self.history else {}

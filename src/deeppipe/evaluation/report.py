"""The end-of-run summary table printed after evaluation."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from deeppipe.data.task import Task


def print_summary(experiment: str, task: Task, scalars: dict[str, float], n_test: int, meta: dict[str, Any]) -> None:
    """A readable table of the test metrics at the end of a run."""
    table = Table(title=f"{experiment}: test metrics ({n_test} samples)", title_style="bold", min_width=48)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for k, v in scalars.items():
        table.add_row(k, f"{v:.4f}")
    if meta.get("best_epoch") is not None:
        # epochs count from 0, as in history.json and MLflow's steps
        table.add_row("best epoch", f"{meta['best_epoch']} (epochs 0-{int(meta.get('epochs_run') or 1) - 1})")
    Console(stderr=False).print(table)

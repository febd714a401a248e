"""The end-of-run summary table: the test metrics (a forecast's beside its naive baselines'), the
epoch the weights come from and the registry's decision, printed once, last, so a user reads the
outcome at a glance."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table


def summary_table(experiment: str, metrics: dict[str, Any], registry: dict[str, Any] | None = None) -> Table:
    """The table for ``metrics.json``'s content (and ``registry.json``'s, when the model was registered)."""
    n = metrics.get("evaluated_on", {}).get("samples")
    split = metrics.get("evaluated_on", {}).get("split", "test")
    title = f"{experiment}: {split} metrics" + (f" ({n} samples)" if n else "")
    table = Table(title=title, title_style="bold", min_width=48)
    table.add_column("metric")
    table.add_column("value", justify="right")
    baselines = metrics.get("baselines") or {}
    for k, v in metrics.get("test", {}).items():
        beside = ", ".join(f"{b.replace('_', '-')} {m[k]:.4f}" for b, m in baselines.items() if k in m)
        table.add_row(k, f"{v:.4f}" + (f" ({beside})" if beside else ""))
    train = metrics.get("train", {})
    if train.get("weights_epoch") is not None:
        table.add_row("weights from epoch", f"{train['weights_epoch']} of {train.get('epochs_run')}")
    if registry and registry.get("registered"):
        verdict = (f"v{registry['version']} is '{registry['alias']}'" if registry.get("promoted") else
                   f"v{registry['version']}; '{registry['alias']}' stays v{registry.get('previous_version')}")
        table.add_row("registry", f"{registry.get('registered_model')} {verdict}")
    return table


def print_summary(experiment: str, metrics: dict[str, Any], registry: dict[str, Any] | None = None) -> None:
    Console(stderr=False).print(summary_table(experiment, metrics, registry))

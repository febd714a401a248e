"""The search's figures, drawn by Optuna's own matplotlib visualisation, as PNG bytes: the
optimisation history, parameter importances, parallel coordinates, slices, intermediate values
(the per-epoch curves the pruner saw) and, with several objectives, the Pareto front."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable
from typing import Any

import optuna
from optuna.trial import TrialState

from deeppipe.plotting import figure_png

log = logging.getLogger(__name__)


def study_plots(study: optuna.Study, names: list[str], target: int = 0) -> dict[str, bytes]:
    """Every figure the study has enough finished trials for; ``target`` indexes the objective the
    one-objective figures show (the pick rule's, with several)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from optuna.visualization import matplotlib as vis

    complete = [t for t in study.get_trials(deepcopy=False) if t.state == TrialState.COMPLETE]
    multi = len(names) > 1
    pick: dict[str, Any] = ({"target": lambda t: t.values[target], "target_name": names[target]} if multi
                            else {"target_name": names[0]})
    figures: dict[str, Callable[[], Any]] = {
        "optimization_history": lambda: vis.plot_optimization_history(study, **pick),
        "parallel_coordinate": lambda: vis.plot_parallel_coordinate(study, **pick),
        "slice": lambda: vis.plot_slice(study, **pick),
    }
    if len(complete) >= 2 and len({k for t in complete for k in t.params}) >= 1:
        figures["param_importances"] = lambda: vis.plot_param_importances(study, **pick)
    if not multi and any(t.intermediate_values for t in study.get_trials(deepcopy=False)):
        figures["intermediate_values"] = lambda: vis.plot_intermediate_values(study)
    if multi:
        figures["pareto_front"] = lambda: vis.plot_pareto_front(study, target_names=names)
    out: dict[str, bytes] = {}
    if not complete:
        return out
    for name, draw in figures.items():
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # "experimental" warnings of optuna.visualization.matplotlib
                ax = draw()
            fig = _figure(ax)
            out[name] = figure_png(fig)
        except Exception as exc:  # a figure is a report: never fail a finished search over one
            log.warning("tune plot %s not drawn: %s", name, exc)
    return out


def _figure(ax: Any) -> Any:
    """The figure of what Optuna returns: one Axes, or an array of them (slices, importances)."""
    import numpy as np

    first = ax.flat[0] if isinstance(ax, np.ndarray) else ax
    fig = first.get_figure() if hasattr(first, "get_figure") else first.figure
    if isinstance(ax, np.ndarray) and ax.size > 1:  # one panel per parameter: room for key paths as labels
        w, h = fig.get_size_inches()
        fig.set_size_inches(max(w, 3.6 * ax.size), h)
    return fig

"""Loss / metric curves: a grid of readable panels, each with a legend, titled by the caller."""

from __future__ import annotations

import matplotlib.image as mpimg

from deeppipe.training import plot_history
from deeppipe.training.plots import history_figure

HISTORY = [
    {"epoch": e, "train/loss": 1 / (e + 1), "val/loss": 1.2 / (e + 1), "val/accuracy": 0.5 + 0.1 * e,
     "lr": 0.1, "grad_norm": 1.0 + e, "weight_norm": 3.0, "epoch_time_s": 0.1}
    for e in range(1, 5)
]


def test_plot_history_writes_a_png(tmp_path):
    path = plot_history(HISTORY, tmp_path / "plots" / "curves.png")
    assert path.exists() and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    img = mpimg.imread(path)
    assert 1.2 < img.shape[1] / img.shape[0] < 3.0  # a grid, not a 2299x371 strip
    assert not [p for p in path.parent.iterdir() if p.suffix != ".png" or p.name.startswith(".")]


def test_every_panel_has_a_legend_and_the_figure_the_callers_title():
    fig = history_figure(HISTORY, title="digits_cnn: training curves")
    assert fig._suptitle.get_text() == "digits_cnn: training curves"  # not the last panel's name
    shown = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in shown] == ["loss", "accuracy", "lr", "grad_norm", "weight_norm"]
    assert all(ax.get_legend() is not None for ax in shown)
    assert [t.get_text() for t in shown[0].get_legend().get_texts()] == ["train/loss", "val/loss"]
    assert list(shown[0].lines[0].get_xdata()) == [1, 2, 3, 4]

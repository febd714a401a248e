"""Loss / metric curves as a PNG."""

from __future__ import annotations

import matplotlib.image as mpimg

from deeppipe.training import plot_history


def test_plot_history_writes_a_png(tmp_path):
    history = [
        {
            "epoch": e,
            "train/loss": 1 / (e + 1),
            "val/loss": 1.2 / (e + 1),
            "val/accuracy": 0.5 + 0.1 * e,
            "lr": 0.1,
            "grad_norm": 1.0 + e,
            "weight_norm": 3.0,
            "epoch_time_s": 0.1,
        }
        for e in range(4)
    ]
    path = plot_history(history, tmp_path / "plots" / "curves.png")
    assert path.exists() and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    img = mpimg.imread(path)
    assert img.shape[1] > 4 * img.shape[0] / 2  # five panels side by side
    assert not [p for p in path.parent.iterdir() if p.suffix != ".png" or p.name.startswith(".")]

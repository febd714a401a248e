"""Figures as PNG bytes: the one conversion every stage's plots go through (catalog entries and
MLflow artifacts are bytes, not open matplotlib figures)."""

from __future__ import annotations

import io
from typing import Any


def figure_png(fig: Any, *, dpi: int = 110) -> bytes:
    """Render a matplotlib figure (pyplot or bare ``Figure``) to PNG bytes and release it."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()

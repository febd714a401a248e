"""Small generated sequence and text sets for the sequence tests (written into tmp_path)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd


def tagging_csv(path: Path, n: int = 240, seed: int = 0) -> Path:
    """Long format, one row per step: sequences of 4 to 14 steps; each step is tagged "up",
    "down" (against the previous step's x) or "start": a tag needs the step before it."""
    rng = np.random.default_rng(seed)
    rows = []
    for s in range(n):
        x = rng.normal(size=int(rng.integers(4, 15)))
        for t, v in enumerate(x):
            tag = "start" if t == 0 else "up" if v > x[t - 1] else "down"
            rows.append({"seq": f"s{s}", "step": t, "x": round(float(v), 4), "noise": round(float(rng.normal()), 4),
                         "tag": tag})
    frame = pd.DataFrame(rows).sample(frac=1.0, random_state=seed)  # rows shuffled: order: step sorts them
    frame.to_csv(path, index=False)
    return path


GOOD = ["great", "wonderful", "superb", "loved", "brilliant", "enjoyable"]
BAD = ["awful", "boring", "terrible", "hated", "dull", "dreadful"]
FILLER = ["the", "film", "plot", "acting", "was", "and", "story", "music", "really", "quite", "ending"]


def text_csv(path: Path, n: int = 300, seed: int = 0) -> Path:
    """Short reviews of 3 to 12 words: positive ones hold a word of GOOD, negative ones of BAD."""
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(n):
        label = "pos" if rng.random() < 0.5 else "neg"
        words = list(rng.choice(FILLER, size=int(rng.integers(2, 11))))
        words.insert(int(rng.integers(0, len(words) + 1)), str(rng.choice(GOOD if label == "pos" else BAD)))
        rows.append({"review": " ".join(words).capitalize() + ".", "sentiment": label})
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def series_csv(path: Path, n: int = 300) -> Path:
    """A noisy seasonal series (period 12) with a time column."""
    t = np.arange(n)
    rng = np.random.default_rng(0)
    pd.DataFrame({"t": t, "y": np.sin(2 * np.pi * t / 12) + 0.05 * rng.normal(size=n)}).to_csv(path, index=False)
    return path

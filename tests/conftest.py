"""Shared fixtures: real small data (digits, a Fashion-MNIST slice) and a quiet, deterministic torch."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

import torch

torch.set_num_threads(1)

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
FASHION_DIR = SHARED_DATA / "fashion-mnist"


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO


@pytest.fixture
def scratch_registries():
    """Entries a test registers (a custom loss, a metric) are gone after it: later tests in the
    same worker (the catalogue's every-entry-has-a-row check) see only deeppipe's own."""
    from deeppipe import registry

    regs = [r for r in vars(registry).values() if isinstance(r, registry.Registry)]
    for r in regs:
        r.entries()  # filled now, so what is restored is the full registry
    saved = [(r, dict(r._entries)) for r in regs]
    yield
    for r, entries in saved:
        r._entries.clear()
        r._entries.update(entries)


@pytest.fixture(scope="session")
def digits() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's 1,797 real 8x8 digit images as (N, 1, 8, 8) float32 in [0, 1], int64 labels."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = (d.images / 16.0).astype(np.float32)[:, None, :, :]
    return x, d.target.astype(np.int64)


def _read_idx(path: Path, count: int) -> np.ndarray:
    with gzip.open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    offset = 4 + 4 * ndim
    arr = np.frombuffer(data, dtype=np.uint8, offset=offset).reshape(dims)
    return arr[:count]


@pytest.fixture(scope="session")
def fashion_slice() -> tuple[np.ndarray, np.ndarray]:
    """The first 2,000 Fashion-MNIST training images as (N, 1, 28, 28) float32 in [0, 1]."""
    if not FASHION_DIR.exists():
        pytest.skip(f"Fashion-MNIST not found at {FASHION_DIR}")
    x = _read_idx(FASHION_DIR / "train-images-idx3-ubyte.gz", 2000).astype(np.float32) / 255.0
    y = _read_idx(FASHION_DIR / "train-labels-idx1-ubyte.gz", 2000).astype(np.int64)
    return x[:, None], y


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)
    np.random.seed(0)

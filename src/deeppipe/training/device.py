"""Device choice and seeding: the two things every run must get right before the first step."""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch

from deeppipe.errors import SpecError

_NAMES = ("auto", "cpu", "cuda", "cuda:N", "mps")


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def resolve_device(name: str = "auto", *, path: str = "train.device") -> torch.device:
    """Turn ``auto|cpu|cuda|cuda:N|mps`` into a torch.device, refusing devices this machine lacks.

    ``auto`` picks CUDA, then Apple's MPS, then the CPU, so one spec runs everywhere.
    """
    if isinstance(name, torch.device):
        name = str(name)
    text = str(name).strip().lower()
    if text == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps") if _mps_available() else torch.device("cpu")
    if text == "cpu":
        return torch.device("cpu")
    if text == "mps":
        if not _mps_available():
            raise SpecError(
                "Apple MPS is not available on this machine",
                path=path,
                expected="auto or cpu",
                found=name,
            )
        return torch.device("mps")
    if text == "cuda" or text.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise SpecError(
                f"CUDA is not available on this machine (torch {torch.__version__})",
                path=path,
                expected="auto or cpu",
                found=name,
            )
        if text == "cuda":
            return torch.device("cuda")
        index = text.split(":", 1)[1]
        if not index.isdigit():
            raise SpecError("bad CUDA device index", path=path, expected="cuda:N", found=name)
        count = torch.cuda.device_count()
        if int(index) >= count:
            raise SpecError(
                f"this machine has {count} CUDA device(s)",
                path=path,
                expected=f"cuda:0 .. cuda:{count - 1}",
                found=name,
            )
        return torch.device("cuda", int(index))
    raise SpecError(
        "unknown device",
        path=path,
        expected=f"one of {', '.join(_NAMES)}",
        found=name,
        candidates=("auto", "cpu", "cuda", "mps"),
    )


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices) so that a run repeats."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


@contextmanager
def deterministic_mode(enabled: bool) -> Iterator[None]:
    """Deterministic kernels for the duration of a fit, then the caller's settings back.

    Restoring matters: torch's flags are process-global and would otherwise leak into
    evaluation, other tests or the next Kedro node.
    """
    if not enabled:
        yield
        return
    before = (
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
        torch.backends.cudnn.deterministic,
        torch.backends.cudnn.benchmark,
    )
    # cuBLAS needs a fixed workspace to be deterministic; only takes effect before CUDA starts.
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True)
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before[0], warn_only=before[1])
        torch.backends.cudnn.deterministic = before[2]
        torch.backends.cudnn.benchmark = before[3]

"""Checkpoints: everything needed to continue a run bit for bit, written atomically.

A checkpoint is one file, ``last.pt``, replaced atomically (deeppipe.files): a SIGKILL leaves either
the old or the new checkpoint, never half of one, and never a state told in two places (an
earlier layout kept a ``meta.json`` beside it; a kill between the two renames left them
disagreeing). ``checkpoint_info`` reads the small part of the same file (memory-mapped: the
tensors are not read). Only tensors and plain containers are stored, so loading uses
``torch.load(weights_only=True)``: no pickled code runs, and a file that is anything else is
refused with deeppipe's own message.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from deeppipe.files import atomic_write
from deeppipe.training.errors import TrainingError

CHECKPOINT = "last.pt"
INFO = ("epoch", "spec_hash", "finished", "best_epoch", "best_metric")
_LEGACY_META = "meta.json"
_REQUIRED = {"model", "optimizer", "epoch", "spec_hash", "finished", "history", "rng", "best"}


def rng_state() -> dict[str, Any]:
    """Python, NumPy and torch RNG states as tensors and plain containers (weights_only-safe)."""
    np_state = np.random.get_state()
    py = random.getstate()
    state: dict[str, Any] = {
        "python": [py[0], list(py[1]), py[2]],
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *np_state[2:]],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    npst = state["numpy"]
    np.random.set_state((npst[0], npst[1].numpy().astype(np.uint32), *npst[2:]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save(directory: Path, payload: dict[str, Any]) -> Path:
    """Write the checkpoint: one file, one rename."""
    directory = Path(directory)
    path = atomic_write(directory / CHECKPOINT, lambda f: torch.save(payload, f))
    (directory / _LEGACY_META).unlink(missing_ok=True)  # a stale second opinion would only mislead
    return path


def not_a_checkpoint(path: Path, why: str) -> TrainingError:
    # never PyTorch's own text: it advises loading with weights_only=False, which runs pickled code
    return TrainingError(
        f"{path} is not a deeppipe checkpoint ({why}): it was not loaded and nothing in it ran. "
        f"Delete {path.parent} to train from scratch.")


def load(directory: Path, map_location: torch.device | str = "cpu", *, mmap: bool = False) -> dict[str, Any] | None:
    """The checkpoint in ``directory`` (None if there is none); anything that is not one of
    deeppipe's checkpoints (corrupt, truncated, tampered with) is a TrainingError."""
    path = Path(directory) / CHECKPOINT
    if not path.is_file():
        return None
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True, mmap=mmap)
    except Exception as exc:  # torch raises UnpicklingError, RuntimeError, EOFError, ... for bad files
        why = ("it holds objects other than tensors and plain containers" if "Unpickl" in type(exc).__name__
               else "it is corrupt or truncated")
        raise not_a_checkpoint(path, why) from None
    if not isinstance(payload, dict) or not set(payload) >= _REQUIRED:
        raise not_a_checkpoint(path, "its contents are not a training state")
    return payload


def checkpoint_info(checkpoint_dir: str | Path | None) -> dict[str, Any] | None:
    """What a checkpoint folder holds, cheaply: ``{epoch, spec_hash, finished, best_epoch,
    best_metric}`` or None. ``epoch`` is the number of completed epochs."""
    if checkpoint_dir is None:
        return None
    payload = load(Path(checkpoint_dir), mmap=True)
    if payload is None:
        return None
    info = {k: payload.get(k) for k in INFO}
    if info["best_metric"] is not None:
        info["best_metric"] = float(info["best_metric"])
    return info


def checkpoint_history(checkpoint_dir: str | Path) -> list[dict[str, float]]:
    """The per-epoch records the checkpoint holds (what a continued MLflow run must show)."""
    payload = load(Path(checkpoint_dir), mmap=True)
    return [dict(h) for h in payload["history"]] if payload else []

"""Checkpoints: everything needed to continue a run bit for bit, written atomically.

One file, ``last.pt``, replaced atomically (deeppipe.files) so a SIGKILL leaves either the old or the new
checkpoint, never half of one. Only tensors and plain containers are stored, so loading uses
``torch.load(weights_only=True)`` (no pickled code runs). ``meta.json`` next to it is what
``checkpoint_info`` reads without touching torch.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from deeppipe.files import atomic_write

CHECKPOINT = "last.pt"
META = "meta.json"


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
    """Write the checkpoint, then its meta.json (both atomically)."""
    directory = Path(directory)
    path = directory / CHECKPOINT
    atomic_write(path, lambda f: torch.save(payload, f))
    meta = {k: payload[k] for k in ("epoch", "spec_hash", "finished", "best_epoch", "best_metric")}
    meta["best_metric"] = None if meta["best_metric"] is None else float(meta["best_metric"])
    atomic_write(directory / META, json.dumps(meta, indent=1))
    return path


def load(directory: Path, map_location: torch.device | str = "cpu") -> dict[str, Any] | None:
    path = Path(directory) / CHECKPOINT
    if not path.exists():
        return None
    return torch.load(path, map_location=map_location, weights_only=True)


def checkpoint_info(checkpoint_dir: str | Path | None) -> dict[str, Any] | None:
    """What a checkpoint folder holds, cheaply: ``{epoch, spec_hash, finished, best_epoch,
    best_metric}`` or None. Call it before opening an MLflow run to decide whether to resume it.

    ``epoch`` is the number of completed epochs.
    """
    if checkpoint_dir is None:
        return None
    directory = Path(checkpoint_dir)
    if not (directory / CHECKPOINT).exists():
        return None
    meta_path = directory / META
    if meta_path.exists():
        try:
            return json.loads(meta_path.read_text())
        except json.JSONDecodeError:
            pass
    payload = load(directory)
    return {
        k: payload.get(k) for k in ("epoch", "spec_hash", "finished", "best_epoch", "best_metric")
    }

"""Resuming a killed run: one checkpoint folder per resolved spec, and the MLflow run it belongs to.

``<checkpoints>/<spec hash>/`` holds ``last.pt`` (training.checkpoint) and ``run.json`` (the MLflow
run that trains this spec). Rerunning the same command finds both and continues the same run;
changing any value changes the hash and starts fresh. Checkpoints are for crash recovery only:
finished ones are removed, so every ``kedro run`` trains (DVC is what skips unchanged work).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from deeppipe.files import atomic_write
from deeppipe.training.checkpoint import checkpoint_info

RUN_FILE = "run.json"


def checkpoint_dir(root: Path, spec_hash: str) -> Path:
    return Path(root) / spec_hash


def clear_finished(root: Path) -> None:
    """Remove finished checkpoints (of any spec); unfinished ones are kept to be resumed."""
    if not Path(root).is_dir():
        return
    for folder in Path(root).iterdir():
        info = checkpoint_info(folder) if folder.is_dir() else None
        if info is not None and info.get("finished"):
            shutil.rmtree(folder, ignore_errors=True)


def remember_run(folder: Path, spec_hash: str, run_id: str | None) -> None:
    """Record which MLflow run trains this spec, so a killed run resumes into the same MLflow run."""
    if run_id:
        atomic_write(Path(folder) / RUN_FILE, json.dumps({"run_id": run_id, "spec_hash": spec_hash}))


def interrupted_run(root: Path, spec_hash: str) -> str | None:
    """The MLflow run of an unfinished training of this spec, if one was interrupted."""
    folder = checkpoint_dir(root, spec_hash)
    run_file = folder / RUN_FILE
    if not run_file.is_file():
        return None
    info = checkpoint_info(folder)
    remembered = json.loads(run_file.read_text())
    if info and not info.get("finished") and info.get("spec_hash") == spec_hash \
            and remembered.get("spec_hash") == spec_hash:
        return remembered.get("run_id")
    return None


def trained_run(model_dir: Path) -> str | None:
    """The MLflow run that trained the model stored in ``model_dir`` (evaluate-only stages log there)."""
    meta = Path(model_dir) / "meta.json"
    if meta.is_file():
        return json.loads(meta.read_text()).get("mlflow_run_id")
    return None

"""Resuming a killed run: one checkpoint folder per resolved spec, its resume key, and the MLflow
run it belongs to.

``<checkpoints>/<spec hash>/`` holds ``last.pt`` (training.checkpoint) and ``run.json`` (the MLflow
run that trains this spec, and a stamp of the raw data it read). A checkpoint is resumed only
when its key matches: the spec hash *and* the fingerprint of the data and split it trained on
(``tracking.provenance.data_fingerprint``); on a mismatch the run stops, or starts fresh when
``train.checkpoint.on_mismatch: restart``.

A checkpoint stays until the run that wrote it has completed (the Kedro hook clears finished
ones after a successful run): a run killed after its last epoch (evaluating, registering, saving
the model) is finished by the next one without training again, in the same MLflow run.
Checkpoints are for crash recovery only, so every completed ``kedro run`` trains anew (DVC is what
skips unchanged work).
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from deeppipe.files import atomic_write
from deeppipe.training.checkpoint import CHECKPOINT, checkpoint_history, checkpoint_info
from deeppipe.training.errors import TrainingError

if TYPE_CHECKING:
    from deeppipe.spec.loader import ResolvedSpec

log = logging.getLogger(__name__)
RUN_FILE = "run.json"
_DATA = "+data:"


def checkpoint_dir(root: Path, spec_hash: str) -> Path:
    return Path(root) / spec_hash


def resume_key(spec_hash: str, data_sha256: str) -> str:
    """What a checkpoint must have been written for to be resumed: this spec, on this data and split."""
    return f"{spec_hash}{_DATA}{data_sha256}"


def _info(folder: Path) -> dict[str, Any] | None:
    """checkpoint_info, with a file that is not a checkpoint taken as none (training refuses it)."""
    try:
        return checkpoint_info(folder)
    except TrainingError:
        return None


def clear_finished(root: Path, keep: Path | None = None) -> None:
    """Remove finished checkpoints (of any spec but ``keep``); unfinished ones are kept to be resumed."""
    if not Path(root).is_dir():
        return
    for folder in Path(root).iterdir():
        if not folder.is_dir() or (keep is not None and folder == Path(keep)):
            continue
        info = _info(folder)
        if info is not None and info.get("finished"):
            shutil.rmtree(folder, ignore_errors=True)


def prepare(root: Path, rs: ResolvedSpec, data_sha256: str, tracker: Any) -> tuple[Path, str, Any]:
    """Before training: the checkpoint folder, the resume key, and the tracker to train with.

    A checkpoint written for other data or another split is refused (``on_mismatch: error``) or
    removed (``restart``). When a checkpoint is resumed, the epochs it holds that the MLflow run
    lacks are logged, and epochs the run already has are not logged again."""
    cfg = rs.spec.train.checkpoint
    folder, key = checkpoint_dir(root, rs.hash), resume_key(rs.hash, data_sha256)
    clear_finished(root, keep=folder)
    run_id = getattr(tracker, "run_id", None)
    if cfg.resume and (folder / CHECKPOINT).exists():
        _check_key(folder, key, cfg.on_mismatch)
        tracker = _continue_history(folder, tracker, run_id)
    if run_id:
        from deeppipe.data.sources import source_stamp

        atomic_write(folder / RUN_FILE, json.dumps({"run_id": run_id, "spec_hash": rs.hash, "data_sha256": data_sha256,
                                                    "source": source_stamp(rs.spec.data.source)}))
    return folder, key, tracker


def _check_key(folder: Path, key: str, on_mismatch: str) -> None:
    try:
        info = checkpoint_info(folder)
    except TrainingError as err:
        if on_mismatch == "error":
            raise
        log.warning("%s Starting from scratch (train.checkpoint.on_mismatch: restart).", err.message)
        (folder / CHECKPOINT).unlink(missing_ok=True)
        return
    found = str((info or {}).get("spec_hash"))
    if info is None or found == key:
        return
    old = found.partition(_DATA)[2] or "not recorded"
    msg = (f"the checkpoint in {folder} was written for other data: it trained on data and split with "
           f"fingerprint {old}, this run's are {key.partition(_DATA)[2]} (dataset.npz or split.npz changed "
           "since that run was interrupted); it was not loaded.")
    if on_mismatch == "error":
        raise TrainingError(msg + " Delete the folder, or set train.checkpoint.on_mismatch: restart (or "
                            "train.checkpoint.resume: false) to train from scratch.")
    log.warning("%s Starting from scratch (train.checkpoint.on_mismatch: restart).", msg)
    (folder / CHECKPOINT).unlink(missing_ok=True)


class _LogOnce:
    """A tracker that skips the epochs its MLflow run already shows (a run killed between logging
    an epoch and checkpointing it trains that epoch again; its metrics are not logged twice)."""

    def __init__(self, inner: Any, logged: set[int]) -> None:
        self._inner, self._logged = inner, logged

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        if step is None or step not in self._logged:
            self._inner.log_metrics(metrics, step=step)

    def __getattr__(self, name: str) -> Any:  # everything else is the inner tracker's
        if name.startswith("__") or name in ("_inner", "_logged"):  # copy/pickle probing a bare instance
            raise AttributeError(name)
        return getattr(self._inner, name)


def _continue_history(folder: Path, tracker: Any, run_id: str | None) -> Any:
    client = getattr(tracker, "client", None)
    if client is None or not run_id:
        return tracker
    logged = {m.step for m in client.get_metric_history(run_id, "train/loss")}
    for rec in checkpoint_history(folder):  # epochs a new or cut-short MLflow run has not seen
        epoch = int(rec.get("epoch", -1))
        if epoch >= 0 and epoch not in logged:
            tracker.log_metrics({k: v for k, v in rec.items() if k != "epoch"}, step=epoch)
            logged.add(epoch)
    return _LogOnce(tracker, logged)


def interrupted_run(root: Path, spec_hash: str, source: str | None = None) -> str | None:
    """The MLflow run of a training of this spec that did not complete (killed before its first
    checkpoint, during training, or after it), if the raw data it read is unchanged (``source``:
    ``data.sources.source_stamp``)."""
    folder = checkpoint_dir(root, spec_hash)
    try:
        remembered = json.loads((folder / RUN_FILE).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(remembered, dict) or remembered.get("spec_hash") != spec_hash:
        return None
    if source is not None and remembered.get("source") != source:
        return None  # the data changed: a new MLflow run (training stops or restarts on the new data)
    if (folder / CHECKPOINT).exists():
        info = _info(folder)
        if info is None or not str(info.get("spec_hash")).startswith(spec_hash):
            return None
    return remembered.get("run_id")


def trained_run(model_dir: Path) -> str | None:
    """The MLflow run that trained the model stored in ``model_dir`` (evaluate-only stages log there)."""
    try:
        meta = json.loads((Path(model_dir) / "meta.json").read_text())
    except (OSError, ValueError):
        return None  # no model yet, or a corrupt one: loading it says so
    return meta.get("mlflow_run_id") if isinstance(meta, dict) else None

"""Training a transferred network (``model.pretrained.freeze`` / ``fine_tune``): one or two phases, one run.

- ``freeze`` alone: the named layers stay fixed for the whole run.
- ``fine_tune: {head_epochs: E1, lr_factor: f}``: the first E1 of ``train.epochs`` train only what
  ``freeze`` leaves (by default the head: a new head is trained before its random gradients can
  reach the pretrained layers), then the remaining epochs train every layer at ``f`` x the learning
  rate, from where phase one ended. Both phases log into the same tracker (one MLflow run) with
  continuous epoch numbers and a ``phase`` metric; the history is one list.

Frozen parameters get no gradient, and frozen normalisation layers stay in eval mode
(``models.transfer.hold_norms``), so they are bit-identical after phase one (and after the run, with
``freeze`` alone). Each phase checkpoints in its own sub-folder: a run killed in phase two resumes
there, phase one being found finished.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from deeppipe.errors import SpecError
from deeppipe.files import atomic_write
from deeppipe.training.api import fit
from deeppipe.training.config import TrainConfig
from deeppipe.training.result import FitResult

if TYPE_CHECKING:
    from deeppipe.data.batches import BatchSource
    from deeppipe.data.task import Task

log = logging.getLogger(__name__)


class PhaseTracker:
    """The run's tracker, for one phase: epochs shifted by ``offset``, and a ``phase`` metric."""

    def __init__(self, inner: Any, offset: int, phase: int) -> None:
        self._inner, self._offset, self._phase = inner, offset, phase

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        self._inner.log_metrics({**metrics, "phase": float(self._phase)},
                                step=None if step is None else step + self._offset)

    def __getattr__(self, name: str) -> Any:  # everything else is the run's tracker's
        if name.startswith("__") or name in ("_inner", "_offset", "_phase"):
            raise AttributeError(name)
        return getattr(self._inner, name)


def check_phases(pretrained: Any, train: TrainConfig, *, file: str | None = None) -> None:
    """Validation: phase one leaves epochs for phase two, and freezing needs weights to start from."""
    tune = getattr(pretrained, "fine_tune", None)
    if tune is not None and tune.head_epochs >= train.epochs:
        raise SpecError("the first phase takes every epoch: none is left to fine-tune every layer",
                        path="model.pretrained.fine_tune.head_epochs", file=file,
                        expected=f"fewer than train.epochs ({train.epochs})", found=tune.head_epochs)
    if tune is not None and train.distributed is not None and train.distributed.nproc_per_node > 1:
        raise SpecError("two-phase fine-tuning runs in one process", path="model.pretrained.fine_tune", file=file,
                        expected="no train.distributed (or no fine_tune)", found="set")


def _scaled(cfg: TrainConfig, factor: float, epochs: int) -> TrainConfig:
    opt = cfg.optimizer
    groups = [g.model_copy(update={"lr": g.lr * factor}) if g.lr is not None else g for g in opt.param_groups]
    return cfg.model_copy(update={"epochs": epochs, "optimizer": opt.model_copy(
        update={"lr": opt.lr * factor, "param_groups": groups})})


def fit_model(net: Any, train: BatchSource, val: BatchSource | None, cfg: TrainConfig, task: Task, *,
              pretrained: Any = None, tracker: Any = None, checkpoint_dir: Path | None = None, seed: int = 0,
              spec_hash: str | None = None, metrics_fn: Any = None, file: str | None = None) -> FitResult:
    """``fit``, in the phases ``model.pretrained`` asks for (one plain ``fit`` when it asks for none)."""
    common = {"seed": seed, "spec_hash": spec_hash, "metrics_fn": metrics_fn}
    if pretrained is None or (pretrained.freeze is None and pretrained.fine_tune is None):
        return fit(net, train, val, cfg, task, tracker=tracker, checkpoint_dir=checkpoint_dir, **common)
    from deeppipe.models.transfer import hold_norms, phase_one_frozen

    frozen = phase_one_frozen(net.body, pretrained, file=file)
    tune = pretrained.fine_tune
    e1 = tune.head_epochs if tune is not None else cfg.epochs
    first = cfg.model_copy(update={"epochs": e1, "freeze": [*cfg.freeze, *(f"body.{n}" for n in frozen)]})
    hooks = hold_norms(net.body, frozen)
    log.info("transfer: %d of %d parameter tensors frozen%s", len(frozen), sum(1 for _ in net.body.parameters()),
             f" for the first {e1} epochs" if tune is not None else "")
    sub = (lambda name: checkpoint_dir / name) if checkpoint_dir is not None and tune is not None else (
        lambda name: checkpoint_dir)
    try:
        one = fit(net, train, val, first, task, tracker=PhaseTracker(tracker, 0, 1) if tracker else None,
                  checkpoint_dir=sub("head"), **common)
    finally:
        for hook in hooks:
            hook.remove()
    if tune is None:
        return one
    params = dict(net.body.named_parameters())
    for name in frozen:  # thawed: phase two's own train.freeze is applied by its trainer
        params[name].requires_grad_(True)
    e2 = cfg.epochs - e1
    log.info("transfer: fine-tuning every layer for %d epochs at lr x %g", e2, tune.lr_factor)
    two = fit(net, train, val, _scaled(cfg, tune.lr_factor, e2), task,
              tracker=PhaseTracker(tracker, one.epochs_run, 2) if tracker else None,
              checkpoint_dir=sub("fine_tune"), **common)
    if checkpoint_dir is not None and two.checkpoint_path is not None and two.checkpoint_path.is_file():
        # the run's own checkpoint: what resume and clean-up look for (the phases' stay beside it)
        atomic_write(checkpoint_dir / two.checkpoint_path.name, two.checkpoint_path.read_bytes())
    return _joined(one, two)


def _joined(one: FitResult, two: FitResult) -> FitResult:
    shift = one.epochs_run
    history = [{**h, "phase": 1.0} for h in one.history]
    history += [{**h, "epoch": h["epoch"] + shift, "phase": 2.0} for h in two.history]
    return FitResult(history=history, best_epoch=None if two.best_epoch is None else two.best_epoch + shift,
                     best_metric=two.best_metric, monitor=two.monitor, stopped_early=two.stopped_early,
                     epochs_run=one.epochs_run + two.epochs_run,
                     resumed_from=two.resumed_from + shift if two.resumed_from is not None else one.resumed_from,
                     restored_best=two.restored_best, checkpoint_path=two.checkpoint_path)

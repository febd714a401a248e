"""The training engine: ``fit`` a model on batch sources as the spec's ``train:`` section says.

Public API (imported on first use, so reading ``training.config`` does not load the engine)::

    fit(model, train, val, cfg, task, *, tracker=None, checkpoint_dir=None, seed=0,
        spec_hash=None, metrics_fn=None) -> FitResult
    predict(model, x, *, batch_size=1024, device=None) -> np.ndarray   # raw outputs
    resolve_device(name="auto") -> torch.device
    checkpoint_info(checkpoint_dir) -> dict | None     # before opening an MLflow run
    plot_history(history, path) -> Path                 # loss/metric curves PNG
    validate_config(train_section) -> TrainConfig      # names and arguments, no model needed
    check_against(cfg, task, ...)                       # the section against the data and model

The train *stage* (build the experiment's network, fit it, return the artifact) is
``deeppipe.training.stage.fit_experiment``.
"""

from typing import Any

_LAZY = {
    "fit": "api", "check_against": "checks", "validate_config": "checks", "checkpoint_info": "checkpoint",
    "TrainConfig": "config", "resolve_device": "device", "seed_everything": "device", "TrainingError": "errors",
    "build_loss": "losses", "register_loss": "losses", "plot_history": "plots", "predict": "inference",
    "FitResult": "result",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"deeppipe.training.{_LAZY[name]}"), name)
    raise AttributeError(name)


__all__ = sorted(_LAZY)

"""The training engine: ``fit`` a model on batch sources as the spec's ``train:`` section says.

Public API::

    fit(model, train, val, cfg, task, *, tracker=None, checkpoint_dir=None, seed=0,
        spec_hash=None, metrics_fn=None) -> FitResult
    predict(model, x, *, batch_size=1024, device=None) -> np.ndarray   # raw outputs
    resolve_device(name="auto") -> torch.device
    checkpoint_info(checkpoint_dir) -> dict | None     # before opening an MLflow run
    plot_history(history, path) -> Path                 # loss/metric curves PNG
    validate_config(train_section) -> TrainConfig      # names and arguments, no model needed
"""

from deeppipe.training.api import fit, validate_config
from deeppipe.training.checkpoint import checkpoint_info
from deeppipe.training.config import TrainConfig
from deeppipe.training.device import resolve_device, seed_everything
from deeppipe.training.errors import TrainingError
from deeppipe.training.losses import LOSSES, build_loss, register_loss
from deeppipe.training.optim import OPTIMIZERS
from deeppipe.training.plots import plot_history
from deeppipe.training.predict import predict
from deeppipe.training.result import FitResult
from deeppipe.training.schedules import SCHEDULES

__all__ = [
    "LOSSES",
    "OPTIMIZERS",
    "SCHEDULES",
    "FitResult",
    "TrainConfig",
    "TrainingError",
    "build_loss",
    "checkpoint_info",
    "fit",
    "plot_history",
    "predict",
    "register_loss",
    "resolve_device",
    "seed_everything",
    "validate_config",
]

"""Kedro project settings."""

import os
import warnings

from kedro.config import OmegaConfigLoader

from deeppipe.console import ConsoleHooks
from deeppipe.hooks import DeeppipeHooks
from deeppipe.io import Catalog

# MLflow warns at import about kedro-mlflow's model class lacking type hints: not ours to fix.
warnings.filterwarnings("ignore", message=r".*Add type hints to the `predict` method.*")

HOOKS = (DeeppipeHooks(), ConsoleHooks())
CONFIG_LOADER_CLASS = OmegaConfigLoader
DATA_CATALOG_CLASS = Catalog  # a full disk or a corrupt artefact: deeppipe's one message, no traceback


def _env(name: str, default: str | None = None) -> str | None:
    """``${env:NAME,default}`` in conf files: a machine's MLFLOW_TRACKING_URI wins over the default."""
    return os.environ.get(name, default)


CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    "custom_resolvers": {"env": _env},
}

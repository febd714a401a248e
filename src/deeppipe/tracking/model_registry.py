"""Log a model to MLflow, register it, and move the champion alias only when it is better."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
from mlflow.models import infer_signature

log = logging.getLogger(__name__)

PYFUNC_CODE = Path(__file__).with_name("pyfunc_model.py")


def _requirements() -> list[str]:
    from importlib.metadata import version

    reqs = []
    for pkg in ("torch", "numpy", "safetensors", "pyyaml", "pydantic", "scikit-learn", "mlflow"):
        try:
            v = version(pkg).split("+")[0]
            reqs.append(f"{pkg}=={v}")
        except Exception:
            reqs.append(pkg)
    return reqs


def log_model(model_dir: str | Path, input_example: np.ndarray, output_example: np.ndarray,
              registered_name: str | None) -> Any:
    """Log the spec + weights folder as a pyfunc model from code; register it when a name is given."""
    signature = infer_signature(input_example, output_example, params={"output": "proba"})
    return mlflow.pyfunc.log_model(
        name="model",
        python_model=str(PYFUNC_CODE),
        artifacts={"model": str(model_dir)},
        signature=signature,
        input_example=input_example,
        registered_model_name=registered_name,
        pip_requirements=_requirements(),
    )


def promote_if_better(name: str, version: str | int, metric: str, value: float, mode: str,
                      alias: str = "champion") -> dict[str, Any]:
    """Point ``alias`` at ``version`` if it beats the version the alias points at now (or none does).

    The comparison value is stored as a tag on each version, so the decision never depends on
    which run is active.
    """
    client = mlflow.MlflowClient()
    version = str(version)
    client.set_model_version_tag(name, version, f"selection.{metric}", str(value))
    try:
        current = client.get_model_version_by_alias(name, alias)
    except mlflow.exceptions.MlflowException:
        current = None
    current_value = None
    if current is not None:
        tag = current.tags.get(f"selection.{metric}")
        current_value = float(tag) if tag is not None else None
    better = current is None or current_value is None or (
        value > current_value if mode == "max" else value < current_value)
    if better:
        client.set_registered_model_alias(name, alias, version)
    decision = {
        "registered_model": name,
        "version": version,
        "alias": alias,
        "metric": metric,
        "value": value,
        "previous_version": None if current is None else str(current.version),
        "previous_value": current_value,
        "promoted": bool(better),
    }
    log.info("model %s v%s %s=%.4f: %s", name, version, metric, value,
             f"now '{alias}'" if better else f"'{alias}' stays v{current.version} ({current_value:.4f})")
    return decision

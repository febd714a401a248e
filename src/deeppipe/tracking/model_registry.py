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


# What loading and predicting import (deeppipe's code itself travels in the model's code/ folder).
# mlflow-skinny, not mlflow: the scoring server and pyfunc are in it, the tracking server is not.
RUNTIME_PACKAGES = ("torch", "numpy", "pandas", "safetensors", "pyyaml", "pydantic", "click")


def requirements() -> list[str]:
    """The model's pip requirements, pinned to the versions it was trained with."""
    from importlib.metadata import PackageNotFoundError, version

    reqs = []
    for pkg in ("mlflow-skinny", *RUNTIME_PACKAGES):
        try:
            reqs.append(f"{pkg}=={version(pkg).split('+')[0]}")
        except PackageNotFoundError:  # mlflow installed without its skinny split: same version
            reqs.append(f"{pkg}=={version('mlflow')}" if pkg == "mlflow-skinny" else pkg)
    return reqs


def _package_copy(into: Path) -> Path:
    """deeppipe's source without caches: what ``code_paths`` ships with the model."""
    import shutil

    import deeppipe

    target = into / "deeppipe"
    shutil.copytree(Path(deeppipe.__file__).parent, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return target


class _no_requirement_scan:
    """MLflow checks the model's pip requirements against the environment, mapping every installed
    distribution to its modules first (``importlib.metadata.packages_distributions``: ~0.5-1.5 s,
    a third of registering a model); ``log_model`` runs it when it loads the logged model to check
    the input example serves. ``requirements()`` pins exactly what this environment runs, so the
    check cannot find a mismatch: it is skipped while the model is logged, in each module that holds
    its own reference to the function (looked up defensively: where one is missing, MLflow's own
    behaviour is kept)."""

    MODULES = ("mlflow.utils.environment", "mlflow.pyfunc")
    NAME = "warn_dependency_requirement_mismatches"

    def __enter__(self) -> None:
        import importlib

        self.saved: list[tuple[Any, Any]] = []
        for name in self.MODULES:
            module = importlib.import_module(name)
            original = getattr(module, self.NAME, None)
            if original is not None:
                self.saved.append((module, original))
                setattr(module, self.NAME, _skip)

    def __exit__(self, *exc: Any) -> None:
        for module, original in self.saved:
            setattr(module, self.NAME, original)


def _skip(*_: Any, **__: Any) -> None:
    return None


def log_model(model_dir: str | Path, input_example: np.ndarray, output_example: np.ndarray,
              registered_name: str | None, *, output: str = "proba", step: int = 0,
              metadata: dict[str, Any] | None = None) -> tuple[Any, str | None]:
    """Log the spec + weights folder as a self-contained pyfunc (model from code, deeppipe's code
    beside it); ``step`` links the model to the run's metrics of the epoch whose weights it holds.
    Registers it when a name is given."""
    import tempfile

    signature = infer_signature(input_example, output_example, params={"output": output})
    with tempfile.TemporaryDirectory() as tmp, _no_requirement_scan():
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=str(PYFUNC_CODE),
            artifacts={"model": str(model_dir)},
            code_paths=[str(_package_copy(Path(tmp)))],
            signature=signature,
            input_example=input_example,
            pip_requirements=requirements(),
            metadata=metadata,
            step=step,
        )
    version = register(registered_name, info) if registered_name else None
    return info, version


def register(name: str, info: Any) -> str:
    """A new registry version of a logged model (through the client, which prints nothing,
    unlike the fluent ``registered_model_name=`` path)."""
    client = mlflow.MlflowClient()
    try:
        client.get_registered_model(name)
    except mlflow.exceptions.MlflowException:
        client.create_registered_model(name)
    version = client.create_model_version(name, source=info.model_uri, run_id=info.run_id, model_id=info.model_id)
    return str(version.version)


def describe_version(name: str, version: str | int, description: str, tags: dict[str, Any]) -> None:
    """Lineage on a registry version: where it came from, readable on the registry page."""
    client = mlflow.MlflowClient()
    client.update_model_version(name, str(version), description=description)
    for key, value in tags.items():
        if value is not None:
            client.set_model_version_tag(name, str(version), key, str(value))


def registered_version(name: str, run_id: str, weights_sha256: str) -> Any:
    """The version of ``name`` that already holds these weights from this run, if any: a stage run
    that evaluates and registers a stored model again (``--tags evaluate,register``, a rerun after
    a kill) finds it instead of adding a copy."""
    client = mlflow.MlflowClient()
    try:
        versions = client.search_model_versions(f"name = '{name}' and run_id = '{run_id}'")
    except mlflow.exceptions.MlflowException:
        return None
    return next((v for v in versions if v.tags.get("deeppipe.weights_sha256") == weights_sha256), None)


def alias_version(name: str, alias: str) -> str | None:
    try:
        return str(mlflow.MlflowClient().get_model_version_by_alias(name, alias).version)
    except mlflow.exceptions.MlflowException:
        return None


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
    log.debug("model %s v%s %s=%.4f: %s", name, version, metric, value,
             f"now '{alias}'" if better else f"'{alias}' stays v{current.version} ({current_value:.4f})")
    return decision

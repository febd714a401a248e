"""The ``register:`` section: under which name the model enters MLflow's registry, and the alias
that follows the best version."""

from __future__ import annotations

from pydantic import Field, field_validator

from deeppipe.config import Strict


def _mlflow_refusal(check: str, value: str) -> str | None:
    """MLflow's own rule for a registry name or alias (its validators are private, so this is
    the one place that calls them): the reason it refuses ``value``, or None."""
    from mlflow.exceptions import MlflowException
    from mlflow.utils import validation

    try:
        if check == "alias":
            validation._validate_model_alias_name(value)
            validation._validate_model_alias_name_reserved(value)
        else:
            validation._validate_model_name(value)
    except MlflowException as exc:
        return exc.message
    return None


class RegisterConfig(Strict):
    enabled: bool = True
    name: str | None = Field(None, description="registered model name (default: the experiment's name)")
    alias: str = Field("champion", description="alias moved to a new version when it beats the current one")

    @field_validator("name")
    @classmethod
    def _name(cls, value: str | None) -> str | None:
        if value is not None and (why := _mlflow_refusal("name", value)):
            raise ValueError(f"MLflow refuses this registered model name: {why}")
        return value

    @field_validator("alias")
    @classmethod
    def _alias(cls, value: str) -> str:
        if why := _mlflow_refusal("alias", value):
            raise ValueError(f"MLflow refuses this alias: {why}")
        return value

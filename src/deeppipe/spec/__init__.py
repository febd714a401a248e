"""The experiment spec: schema, loading, ``--params`` overrides and actionable errors."""

from deeppipe.spec.loader import ResolvedSpec, apply_overrides, load_spec, read_yaml, validate
from deeppipe.spec.schema import ExperimentSpec

__all__ = ["ExperimentSpec", "ResolvedSpec", "apply_overrides", "load_spec", "read_yaml", "validate"]

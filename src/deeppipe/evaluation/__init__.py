"""Evaluation: scikit-learn metrics from model outputs, plots, the end-of-run summary."""

from deeppipe.evaluation.metrics import compute_metrics, default_metrics, probabilities, selection

__all__ = ["compute_metrics", "default_metrics", "probabilities", "selection"]

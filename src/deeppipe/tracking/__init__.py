"""Tracking: the Tracker seam, MLflow logging, the pyfunc model flavour and the registry."""

from deeppipe.tracking.tracker import MemoryTracker, NullTracker, Tracker

__all__ = ["MemoryTracker", "NullTracker", "Tracker"]

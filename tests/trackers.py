"""Trackers tests share: a run killed right after it logs an epoch."""

from __future__ import annotations

from deeppipe.tracking.tracker import MemoryTracker


class Crash(MemoryTracker):
    """Kills the run (a KeyboardInterrupt, as a Ctrl-C or a kill would stop it) after logging epoch ``at``
    (epochs count from 1): the checkpoint of that epoch is never written."""

    def __init__(self, at: int) -> None:
        super().__init__()
        self.at = at

    def log_metrics(self, metrics, step=None):
        super().log_metrics(metrics, step)
        if step == self.at:
            raise KeyboardInterrupt(f"simulated kill after logging epoch {self.at}")

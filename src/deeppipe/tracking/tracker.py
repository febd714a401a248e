"""The tracker the trainer and evaluation talk to; MLflow is one implementation.

Keeping this seam small means the trainer never imports mlflow and tests can assert on
exactly what would have been logged.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol


class Tracker(Protocol):
    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None: ...

    def log_params(self, params: dict[str, Any]) -> None: ...

    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None: ...

    def set_tags(self, tags: dict[str, str]) -> None: ...

    def log_dataset(self, name: str, features: Any, targets: Any, *, source: str, digest: str,
                    context: str = "training") -> None: ...


class NullTracker:
    """Logs nothing (tests, tools run outside a tracked session)."""

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        pass

    def log_params(self, params: dict[str, Any]) -> None:
        pass

    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None:
        pass

    def set_tags(self, tags: dict[str, str]) -> None:
        pass

    def log_dataset(self, name: str, features: Any, targets: Any, *, source: str, digest: str,
                    context: str = "training") -> None:
        pass


class MemoryTracker(NullTracker):
    """Keeps everything in lists: handy for tests."""

    def __init__(self) -> None:
        self.metrics: list[tuple[int | None, dict[str, float]]] = []
        self.params: dict[str, Any] = {}
        self.artifacts: list[tuple[str, str | None]] = []
        self.tags: dict[str, str] = {}
        self.datasets: list[dict[str, Any]] = []

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        self.metrics.append((step, dict(metrics)))

    def log_params(self, params: dict[str, Any]) -> None:
        self.params.update(params)

    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None:
        self.artifacts.append((str(path), artifact_path))

    def set_tags(self, tags: dict[str, str]) -> None:
        self.tags.update(tags)

    def log_dataset(self, name: str, features: Any, targets: Any, *, source: str, digest: str,
                    context: str = "training") -> None:
        self.datasets.append({"name": name, "source": source, "digest": digest, "context": context,
                              "shape": tuple(getattr(features, "shape", ()))})

    def series(self, key: str) -> list[float]:
        return [m[key] for _, m in self.metrics if key in m]


def log_bytes(tracker: Tracker, filename: str, data: bytes | str, artifact_path: str | None = None) -> None:
    """Log in-memory content (a PNG, a text table) as a run artifact named ``filename``."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / filename
        path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
        tracker.log_artifact(path, artifact_path)

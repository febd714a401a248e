"""Kedro datasets for deeppipe's artefacts; every save is atomic (temp file, then rename).

kedro-datasets has no atomic npz, model-folder or figure writer, so these few are hand-written;
MLflow logging of figures goes through kedro-mlflow's MlflowArtifactDataset wrapping them.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from kedro.io import AbstractDataset, DatasetError


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


class _FileDataset(AbstractDataset):
    def __init__(self, filepath: str, metadata: dict[str, Any] | None = None) -> None:
        self._filepath = Path(filepath)
        self.metadata = metadata

    def _describe(self) -> dict[str, Any]:
        return {"filepath": str(self._filepath)}

    def _exists(self) -> bool:
        return self._filepath.exists()

    def _missing(self) -> DatasetError:
        return DatasetError(f"{self._filepath} does not exist yet: run the stage that writes it first "
                            f"(kedro run --pipeline <experiment> without --tags, or dvc repro)")


class NpzDataset(_FileDataset):
    """A dict of numpy arrays in one .npz (no pickles: allow_pickle=False both ways)."""

    def load(self) -> dict[str, np.ndarray]:
        if not self._exists():
            raise self._missing()
        with np.load(self._filepath, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}

    def save(self, data: dict[str, np.ndarray]) -> None:
        self._filepath.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self._filepath.parent, prefix=f".{self._filepath.name}.", suffix=".npz")
        os.close(fd)
        try:
            np.savez(tmp, allow_pickle=False, **{k: np.asarray(v) for k, v in data.items()})
            os.replace(tmp, self._filepath)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise


class JsonDataset(_FileDataset):
    def load(self) -> Any:
        if not self._exists():
            raise self._missing()
        return json.loads(self._filepath.read_text())

    def save(self, data: Any) -> None:
        atomic_write_text(self._filepath, json.dumps(data, indent=2, sort_keys=False, default=_jsonable))


class ModelDataset(_FileDataset):
    """A deeppipe model folder: spec.yaml + model.safetensors + meta.json."""

    def load(self) -> Any:
        from deeppipe.artifact import load_artifact

        if not self._exists():
            raise self._missing()
        return load_artifact(self._filepath)

    def save(self, data: Any) -> None:
        from deeppipe.artifact import save_artifact

        save_artifact(data, self._filepath)


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


class CsvDataset(_FileDataset):
    """A pandas DataFrame as CSV (no index column)."""

    def load(self) -> Any:
        import pandas as pd

        if not self._exists():
            raise self._missing()
        return pd.read_csv(self._filepath)

    def save(self, data: Any) -> None:
        atomic_write_text(self._filepath, data.to_csv(index=False))


class PngFolderDataset(_FileDataset):
    """A dict name -> PNG bytes, one ``<name>.png`` per entry in a folder."""

    def load(self) -> dict[str, bytes]:
        if not self._exists():
            raise self._missing()
        return {p.stem: p.read_bytes() for p in sorted(self._filepath.glob("*.png"))}

    def save(self, data: dict[str, bytes]) -> None:
        for name, png in data.items():
            atomic_write_bytes(self._filepath / f"{name}.png", png)

"""The Kedro datasets of deeppipe's artefacts, all written through ``deeppipe.files``' atomic writers.

kedro-datasets has no atomic npz, model-folder or figure writer, so these few are hand-written;
each names its file when something is missing.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from kedro.io import AbstractDataset, DataCatalog, DatasetError

from deeppipe.files import atomic_dir, atomic_write, load_npz, save_npz, write_json


class Catalog(DataCatalog):
    """Kedro's catalog, except that a deeppipe error while loading or saving an artefact (a full
    disk, a corrupt model folder: ``deeppipe.files.ArtefactError``) reaches ``kedro run`` as itself,
    one message without a traceback; Kedro's catalog would wrap it in a DatasetError."""

    def load(self, ds_name: str, version: str | None = None) -> Any:
        try:
            return super().load(ds_name, version)
        except DatasetError as exc:
            raise _ours(exc) from None

    def save(self, ds_name: str, data: Any) -> None:
        try:
            super().save(ds_name, data)
        except DatasetError as exc:
            raise _ours(exc) from None


def _ours(exc: BaseException) -> BaseException:
    from deeppipe.files import ArtefactError

    cause: BaseException | None = exc
    while cause is not None and not isinstance(cause, ArtefactError):
        cause = cause.__cause__
    return cause if cause is not None else exc


# ------------------------------------------------------------------------------ catalog types
class _FileDataset(AbstractDataset):
    def __init__(self, filepath: str, metadata: dict[str, Any] | None = None) -> None:
        self._filepath = Path(filepath)
        self.metadata = metadata

    @property
    def filepath(self) -> Path:
        return self._filepath

    def _describe(self) -> dict[str, Any]:
        return {"filepath": str(self._filepath)}

    def _exists(self) -> bool:
        return self._filepath.exists()

    def _missing(self) -> DatasetError:
        from deeppipe.files import ArtefactError

        return ArtefactError(f"{self._filepath} does not exist yet: run the stage that writes it first "
                             f"(kedro run --pipeline <experiment> without --tags, or dvc repro)")

    def _check(self) -> None:
        if not self._exists():
            raise self._missing()


class NpzDataset(_FileDataset):
    """A dict of numpy arrays in one .npz (no pickles: allow_pickle=False both ways)."""

    def load(self) -> dict[str, np.ndarray]:
        self._check()
        return load_npz(self._filepath)

    def save(self, data: dict[str, np.ndarray]) -> None:
        save_npz(self._filepath, data)


class SamplesDataset(NpzDataset):
    """The ingested ``deeppipe.data.Samples`` (inputs, targets, task) as one .npz."""

    def load(self) -> Any:
        from deeppipe.data.sources import Samples

        return Samples.from_arrays(super().load())

    def save(self, data: Any) -> None:
        super().save(data.to_arrays())


class SplitDataset(NpzDataset):
    """A ``deeppipe.data.Split`` (train/val/test and fold indices) as one .npz."""

    def load(self) -> Any:
        from deeppipe.data.stage import Split

        return Split.from_arrays(super().load())

    def save(self, data: Any) -> None:
        super().save(data.to_arrays())


class OfflineDataset(NpzDataset):
    """The offline-augmented training set (``augment.offline``), or an empty file when the spec
    asks for none: the train node then uses the training split itself."""

    def load(self) -> Any:
        from deeppipe.data.sources import Samples

        arrays = super().load()
        return Samples.from_arrays(arrays) if arrays else None

    def save(self, data: Any) -> None:
        super().save({} if data is None else data.to_arrays())


class JsonDataset(_FileDataset):
    def load(self) -> Any:
        self._check()
        return json.loads(self._filepath.read_text())

    def save(self, data: Any) -> None:
        write_json(self._filepath, data)


class YamlDataset(_FileDataset):
    """A mapping as YAML (best_params.yml: read by people and by ``dvc params``), written atomically."""

    def load(self) -> Any:
        from deeppipe.spec.reading import read_yaml

        self._check()
        return read_yaml(self._filepath)

    def save(self, data: Any) -> None:
        import yaml

        atomic_write(self._filepath, yaml.safe_dump(data, sort_keys=False))


class ModelDataset(_FileDataset):
    """A deeppipe model folder: spec.yaml + model.safetensors + meta.json (one model or an ensemble)."""

    def load(self) -> Any:
        from deeppipe.ensemble.artifact import load_model

        self._check()
        return load_model(self._filepath)

    def save(self, data: Any) -> None:
        from deeppipe.artifact import save_artifact

        save_artifact(data, self._filepath)


class MemberDataset(_FileDataset):
    """An ensemble member's folder: its model, the rows it trained on, its history."""

    def load(self) -> Any:
        from deeppipe.ensemble.members import load_member

        self._check()
        return load_member(self._filepath)

    def save(self, data: Any) -> None:
        from deeppipe.ensemble.members import save_member

        save_member(data, self._filepath)


class CsvFolderDataset(_FileDataset):
    """Tables as <name>.csv files in one folder (DVC's plot data), swapped in together."""

    def load(self) -> dict[str, Any]:
        import pandas as pd

        self._check()
        return {p.stem: pd.read_csv(p) for p in sorted(self._filepath.glob("*.csv"))}

    def save(self, data: dict[str, Any]) -> None:
        with atomic_dir(self._filepath) as tmp:
            for name, table in data.items():
                table.to_csv(tmp / f"{name}.csv", index=False)


class TextDataset(_FileDataset):
    """A text file (the one-file HTML report), written atomically."""

    def load(self) -> str:
        self._check()
        return self._filepath.read_text(encoding="utf-8")

    def save(self, data: str) -> None:
        atomic_write(self._filepath, data.encode("utf-8"))


class CsvDataset(_FileDataset):
    """A pandas DataFrame as CSV (no index column)."""

    def load(self) -> Any:
        import pandas as pd

        self._check()
        return pd.read_csv(self._filepath)

    def save(self, data: Any) -> None:
        atomic_write(self._filepath, data.to_csv(index=False))


class PngFolderDataset(_FileDataset):
    """A dict name -> PNG bytes, one ``<name>.png`` per entry in a folder."""

    def load(self) -> dict[str, bytes]:
        self._check()
        return {p.stem: p.read_bytes() for p in sorted(self._filepath.glob("*.png"))}

    def save(self, data: dict[str, bytes]) -> None:
        with atomic_dir(self._filepath) as tmp:  # the folder as one unit: no old figure beside new ones
            for name, png in data.items():
                (tmp / f"{name}.png").write_bytes(png)


class FolderPath(_FileDataset):
    """A folder a stage manages itself (checkpoints): loading gives its path, nothing is saved."""

    def load(self) -> Path:
        return self._filepath

    def save(self, data: Any) -> None:
        raise DatasetError(f"{self._filepath} is written by its stage, not through the catalog")

    def _exists(self) -> bool:
        return True

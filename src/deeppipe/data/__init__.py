"""Data ingestion: readers per source type, seeded splits, normalisation, batch sources.

The stage functions are ``deeppipe.data.stage.ingest`` and ``deeppipe.data.stage.split``.

Readers and splits import scikit-learn, which costs about a second: they load on first use, so
processes that only need batches (distributed training workers) stay light.
"""

from typing import Any

from deeppipe.data.batches import BatchSource, TensorBatches
from deeppipe.data.task import Task

_LAZY = {"DataError": "sources", "Samples": "sources", "load_source": "sources", "peek": "sources",
         "make_split": "split", "Split": "stage"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"deeppipe.data.{_LAZY[name]}"), name)
    raise AttributeError(name)


__all__ = ["BatchSource", "DataError", "Samples", "Split", "Task", "TensorBatches", "load_source", "make_split",
           "peek"]

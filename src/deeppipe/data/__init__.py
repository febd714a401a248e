"""Data ingestion: readers per source type, seeded splits, normalisation, batch sources."""

from deeppipe.data.batches import BatchSource, TensorBatches
from deeppipe.data.sources import DataError, RawData, load_source, peek
from deeppipe.data.split import make_split
from deeppipe.data.task import Task

__all__ = ["BatchSource", "DataError", "RawData", "Task", "TensorBatches", "load_source", "make_split", "peek"]

"""The ingested data set as a Kedro dataset whose pixels are memory-mapped, not read whole.

``dataset.npz`` stays one uncompressed .npz (the file the hooks, DVC and the kill tests know); its
uint8 pixels are mapped straight from the file (``storage.npz_memmap``), so a stage that reads a
few rows, or trains on a data set larger than memory, pages in only what it touches.
"""

from __future__ import annotations

from typing import Any

from deeppipe.data.sources.base import Samples
from deeppipe.data.storage import load_stored
from deeppipe.io import SamplesDataset


class SamplesFile(SamplesDataset):
    """``deeppipe.data.Samples`` as one .npz; uint8 pixels memory-mapped on load."""

    def load(self) -> Any:
        self._check()
        return Samples.from_arrays(load_stored(self._filepath), self._filepath)

"""The model zoo: classic architectures written in the same YAML users write (one file each).

``{zoo: resnet18, num_classes: 10, in_channels: 1, input_size: 32, width: 0.5, dropout: 0.2}``
builds one (``build``); the files here (``catalog``: ``names()``, ``info(name)``) are also the
examples to copy from.
"""

from __future__ import annotations

from deeppipe.models.zoo.build import build_zoo
from deeppipe.models.zoo.catalog import ZooFile, info, load, names, zoo_file

__all__ = ["ZooFile", "build_zoo", "info", "load", "names", "zoo_file"]

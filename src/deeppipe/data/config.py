"""The ``data:`` section: where the samples come from, how they are split, what is done to them.

``data.source`` is one of the registered source types (``deeppipe.registry.SOURCES``): each
type's own section model is declared beside its reader in ``data.sources``.
"""

from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import Field, PositiveInt, ValidationInfo, field_validator, model_validator

from deeppipe.config import Strict
from deeppipe.data.sources import source_configs

# the union of every registered source type, told apart by its `type` key
Source = Annotated[Union[source_configs()], Field(discriminator="type")]  # noqa: UP007


class SplitConfig(Strict):
    """Hold-out fractions (of the whole set) or the source's official test split."""

    val: float = Field(0.1, ge=0.0, lt=1.0)
    test: float | Literal["official"] = 0.2
    stratify: bool = True
    folds: int = Field(0, ge=0, le=1000, description="k-fold indices saved for later use (0: none)")

    @model_validator(mode="after")
    def _fractions(self) -> SplitConfig:
        test = 0.0 if self.test == "official" else float(self.test)
        if not 0.0 <= test < 1.0:
            raise ValueError(f"test must be in [0, 1) or 'official', got {self.test}")
        if self.val + test >= 1.0:
            raise ValueError(f"val + test must leave training data: {self.val} + {test} >= 1")
        if self.folds == 1:
            raise ValueError("folds must be 0 (none) or at least 2")
        return self


class DataConfig(Strict):
    source: Source
    split: SplitConfig = Field(default_factory=SplitConfig)
    on_error: Literal["raise", "skip"] = "raise"
    normalize: bool = True
    limit: int | None = Field(None, gt=0, description="use only the first N samples (quick tries)")
    task: Literal["auto", "reconstruction"] = Field(
        "auto", description="reconstruction: the inputs are the targets (autoencoders); the source's labels are "
                            "kept to colour the codes and to mark outliers")
    anomalies: list[str] = Field(default_factory=list, description="classes held out of train and val "
                                 "(task: reconstruction): the test split's outliers, scored by reconstruction error")
    resize: list[PositiveInt] | None = Field(None, min_length=2, max_length=2, description="[height, width]: "
                                             "images resized when read (e.g. to a pretrained network's input size)")

    stream: bool | Literal["auto"] = Field(
        "auto", description="image_folder: decode the images from their files while training (DataLoader "
                            "workers) instead of holding them in memory; auto: when they exceed memory_budget")
    memory_budget: float | None = Field(None, gt=0, description="GiB an in-memory image folder may take "
                                        "(uint8 pixels) before stream: auto streams it; default a quarter of RAM")
    stream_stats: int = Field(10_000, gt=0, description="streamed images: the normalisation statistics are "
                              "estimated on a seeded sample of this many training images")

    @field_validator("stream")
    @classmethod
    def _stream_reads_folders(cls, value: bool | str, info: ValidationInfo) -> bool | str:
        kind = getattr(info.data.get("source"), "type", None)
        if value is True and kind not in (None, "image_folder"):
            raise ValueError(f"stream: true decodes images from their files while training: it needs "
                             f"data.source.type image_folder, not {kind} (IDX files are memory-mapped already)")
        return value

    @model_validator(mode="before")
    @classmethod
    def _class_names(cls, data: object) -> object:
        if isinstance(data, dict) and isinstance(data.get("anomalies"), list):  # [9] names the class "9"
            data = {**data, "anomalies": [str(a) if isinstance(a, int) and not isinstance(a, bool) else a
                                          for a in data["anomalies"]]}
        return data

    @model_validator(mode="after")
    def _anomalies_need_reconstruction(self) -> DataConfig:
        if self.anomalies and self.task != "reconstruction":
            raise ValueError("anomalies (classes held out as outliers) need task: reconstruction")
        return self

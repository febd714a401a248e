"""What kind of prediction an experiment makes; every later stage reads it instead of guessing."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

TaskKind = Literal["multiclass", "binary", "regression", "reconstruction"]


@dataclass(frozen=True)
class Task:
    """The prediction task: how many outputs the network's head has and how to read them.

    - multiclass: ``num_outputs`` logits, softmax + cross-entropy, targets are int64 class indices.
    - binary: one logit, sigmoid + BCE-with-logits, targets are 0/1 floats.
    - regression: ``num_outputs`` real values (identity output), targets are float32.
    - reconstruction: output has the input's shape (autoencoders), the target is the input.
    """

    kind: TaskKind
    num_outputs: int
    class_names: tuple[str, ...] = field(default_factory=tuple)

    @property
    def is_classification(self) -> bool:
        return self.kind in ("multiclass", "binary")

    @property
    def num_classes(self) -> int:
        return len(self.class_names) if self.is_classification else 0

    def to_dict(self) -> dict:
        return {"kind": self.kind, "num_outputs": self.num_outputs, "class_names": list(self.class_names)}

    @classmethod
    def from_dict(cls, d: dict) -> Task:
        return cls(kind=d["kind"], num_outputs=int(d["num_outputs"]), class_names=tuple(d.get("class_names", ())))

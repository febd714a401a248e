"""What kind of prediction an experiment makes; every later stage reads it instead of guessing."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

TaskKind = Literal["multiclass", "binary", "regression", "reconstruction", "tagging", "ctc"]
STEP_KINDS = ("tagging", "ctc")  # per-step (T, C) outputs, integer targets per step or per label


@dataclass(frozen=True)
class Task:
    """The prediction task: how many outputs the network's head has and how to read them.

    - multiclass: ``num_outputs`` logits, softmax + cross-entropy, targets are int64 class indices.
    - binary: one logit, sigmoid + BCE-with-logits, targets are 0/1 floats.
    - regression: ``num_outputs`` real values (identity output), targets are float32.
    - reconstruction: output has the input's shape (autoencoders), the target is the input.
    - tagging: (T, ``num_outputs``) logits, one class per step; targets (N, T) int64, -100 at padding.
    - ctc: (T, ``num_outputs``) logits (class 0 is the blank); targets (N, S) unaligned label
      sequences, int64, -1 after each sequence's end (``data.sources.sequences``).
    """

    kind: TaskKind
    num_outputs: int
    class_names: tuple[str, ...] = field(default_factory=tuple)

    @property
    def is_classification(self) -> bool:
        return self.kind in ("multiclass", "binary")

    @property
    def per_step(self) -> bool:
        """Outputs (T, C) per sample: tagging and CTC."""
        return self.kind in STEP_KINDS

    @property
    def num_classes(self) -> int:
        return len(self.class_names) if self.is_classification else 0

    def to_dict(self) -> dict:
        return {"kind": self.kind, "num_outputs": self.num_outputs, "class_names": list(self.class_names)}

    @classmethod
    def from_dict(cls, d: dict) -> Task:
        return cls(kind=d["kind"], num_outputs=int(d["num_outputs"]), class_names=tuple(d.get("class_names", ())))
